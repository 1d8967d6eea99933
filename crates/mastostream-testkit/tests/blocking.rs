//! The test server from a plain blocking test, with no runtime of the test's own.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use mastostream_proto::Channel;
use mastostream_testkit::{Fault, Publish, TestServer};

#[test]
fn blocking_server_streams_and_takes_faults() {
    let server = TestServer::builder().start_blocking().unwrap();
    let mut socket = TcpStream::connect(server.addr()).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let request = format!(
        "GET /api/v1/streaming/public/local HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer t\r\n\r\n",
        server.addr()
    );
    socket.write_all(request.as_bytes()).unwrap();
    assert!(server.wait_for_connections(1, Duration::from_secs(5)));
    assert_eq!(
        server.publish(Publish::new("delete", "77").to(Channel::PublicLocal)),
        1
    );
    let mut seen = Vec::new();
    while !seen.windows(10).any(|w| w == b"data: 77\n\n") {
        let mut buf = [0u8; 1024];
        let n = socket.read(&mut buf).unwrap();
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    assert_eq!(server.fault(Fault::Disconnect), Ok(1));
    // The server drops the socket: reads end.
    let mut rest = Vec::new();
    let _ = socket.read_to_end(&mut rest);
    assert!(!String::from_utf8_lossy(&rest).contains("0\r\n\r\n"));
}

#[test]
fn blocking_server_drops_inside_a_runtime_without_panicking() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let server = TestServer::builder().start_blocking().unwrap();
    runtime.block_on(async move { drop(server) });
}
