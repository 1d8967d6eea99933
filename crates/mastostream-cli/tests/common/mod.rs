//! What the CLI's integration tests share.
// Each test file uses only some of these.
#![allow(dead_code)]

use std::process::{Command, Stdio};
use std::time::Duration;

use mastostream_testkit::BlockingTestServer;

/// The `mastostream` binary with `args`, its output piped, and none of the
/// environment that would change what it does (server, token, log filter).
pub fn mastostream(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mastostream"));
    command
        .args(args)
        .env_remove("MASTODON_SERVER")
        .env_remove("MASTODON_TOKEN")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Waits (on the server's signal) until it holds each of `wanted`
/// (WebSocket array form), on SSE connections or one WebSocket.
pub fn wait_for_streams(server: &BlockingTestServer, wanted: &[&[&str]]) {
    let held = server.wait_until(Duration::from_secs(10), |open| {
        wanted
            .iter()
            .all(|w| open.iter().any(|c| c.streams.iter().any(|s| s == w)))
    });
    assert!(held, "the CLI never subscribed: {:?}", server.connections());
}

/// The status fixture with its id cleared, so that the test server gives
/// each published copy an id of its own (catch-up pages by id).
pub fn status_without_id() -> serde_json::Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/entities/status.json"
    );
    let mut status: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    status["id"] = serde_json::Value::Null;
    status
}
