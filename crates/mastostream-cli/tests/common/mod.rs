//! What the CLI's integration tests share.
// Each test file uses only some of these.
#![allow(dead_code)]

use std::process::{Command, Stdio};
use std::time::Duration;

use mastostream_testkit::BlockingTestServer;

/// What in the environment changes what the binary does: server, token,
/// log filter, proxies and trust.
pub const ENVIRONMENT: [&str; 13] = [
    "MASTODON_SERVER",
    "MASTODON_TOKEN",
    "RUST_LOG",
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
];

/// The `mastostream` binary with `args`, its output piped, and none of the
/// [`ENVIRONMENT`] that would change what it does.
pub fn mastostream(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mastostream"));
    command.args(args);
    for name in ENVIRONMENT {
        command.env_remove(name);
    }
    command
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

/// How long a command under test may run before it counts as hung.
pub const HANG_LIMIT: Duration = Duration::from_secs(60);

/// Waits for `child` and its output; if it has not ended within
/// [`HANG_LIMIT`], kills it and fails the test, so that a hang is a red test
/// with the command's output rather than a suite that never ends.
pub fn finish(child: std::process::Child) -> std::process::Output {
    let pid = child.id().to_string();
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        let hung = finished.recv_timeout(HANG_LIMIT).is_err();
        if hung {
            let _ = Command::new("kill").args(["-9", &pid]).status();
        }
        hung
    });
    let output = child.wait_with_output().unwrap();
    let _ = done.send(());
    let hung = watchdog.join().unwrap();
    assert!(
        !hung,
        "the command did not end within {HANG_LIMIT:?}; stdout: {} stderr: {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Starts `mastostream serve --addr 127.0.0.1:0` with `extra`; the child
/// and its first line (`listening on URL`…), trimmed.
pub fn serve_process(extra: &[&str]) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut args = vec!["serve", "--addr", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let mut child = mastostream(&args).spawn().unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    (child, line.trim().to_owned())
}

/// Stops `child` with SIGTERM; its exit status, or a failure if it has not
/// stopped within five seconds (it is then killed).
pub fn terminate(mut child: std::process::Child) -> std::process::ExitStatus {
    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let (done, exited) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait());
    });
    match exited.recv_timeout(Duration::from_secs(5)) {
        Ok(status) => status.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid]).status();
            panic!("serve did not stop on SIGTERM within 5 s");
        }
    }
}
