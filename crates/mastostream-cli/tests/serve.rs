//! `mastostream serve`, run as the real binary.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_mastostream");

/// Starts `mastostream serve` on a free port; returns the child and its address.
fn serve(extra: &[&str]) -> (Child, String) {
    let (child, line) = common::serve_process(extra);
    let url = line
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("first line: {line:?}"));
    let addr = url.strip_prefix("http://").unwrap().to_owned();
    (child, addr)
}

fn http(addr: &str, request: &str) -> String {
    let mut socket = TcpStream::connect(addr).unwrap();
    socket.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    socket.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn serves_health_and_tokens_and_stops_on_sigterm() {
    let (child, addr) = serve(&["--token", "a", "--token", "b", "--heartbeat-secs", "0.05"]);
    let health = http(
        &addr,
        &format!(
            "GET /api/v1/streaming/health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        ),
    );
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(health.ends_with("OK"));
    let refused = http(
        &addr,
        &format!(
            "GET /api/v1/streaming/user HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer c\r\nConnection: close\r\n\r\n"
        ),
    );
    assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");
    // An open stream does not keep the server from stopping.
    let mut stream = TcpStream::connect(&addr).unwrap();
    stream
        .write_all(format!("GET /api/v1/streaming/user HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer b\r\n\r\n").as_bytes())
        .unwrap();
    let mut first = [0u8; 512];
    let n = stream.read(&mut first).unwrap();
    assert!(String::from_utf8_lossy(&first[..n]).starts_with("HTTP/1.1 200"));
    assert!(common::terminate(child).success());
}

#[test]
fn replays_a_file_at_a_rate() {
    let dir = std::env::temp_dir().join(format!("mastostream-serve-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("replay.jsonl");
    std::fs::write(
        &file,
        "{\"stream\":\"public\",\"event\":\"delete\",\"payload\":\"1\"}\n",
    )
    .unwrap();
    let (child, addr) = serve(&["--replay", file.to_str().unwrap(), "--rate", "50"]);
    let mut stream = TcpStream::connect(&addr).unwrap();
    stream
        .write_all(format!("GET /api/v1/streaming/public HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer t\r\n\r\n").as_bytes())
        .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut seen = Vec::new();
    while seen.windows(9).filter(|w| w == b"data: 1\n\n").count() < 3 {
        let mut buf = [0u8; 1024];
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0);
        seen.extend_from_slice(&buf[..n]);
    }
    assert!(common::terminate(child).success());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_arguments_exit_2() {
    for args in [
        &["serve", "--heartbeat-secs", "0"][..],
        &["serve", "--replay", "/nonexistent/file"],
        &["serve", "--addr", "nope"],
        &["serve", "--flavor", "friendica"],
    ] {
        let out = Command::new(BIN).args(args).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `--flavor` makes it behave as another server: GoToSocial serves no SSE
/// (404), Mastodon does.
#[test]
fn flavor_gotosocial_serves_no_sse() {
    for (flavor, status) in [("gotosocial", "HTTP/1.1 404"), ("mastodon", "HTTP/1.1 200")] {
        let (child, addr) = serve(&["--flavor", flavor, "--heartbeat-secs", "0.05"]);
        let mut stream = TcpStream::connect(&addr).unwrap();
        stream
            .write_all(format!("GET /api/v1/streaming/public HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer t\r\n\r\n").as_bytes())
            .unwrap();
        let mut first = [0u8; 512];
        let n = stream.read(&mut first).unwrap();
        let answer = String::from_utf8_lossy(&first[..n]).into_owned();
        assert!(answer.starts_with(status), "{flavor}: {answer}");
        assert!(common::terminate(child).success());
    }
}
