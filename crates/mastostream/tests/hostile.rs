//! Hostile or broken servers: every case ends in a clear error or a recovery,
//! with bounded memory and no panic. Each server here is a raw TCP script on
//! loopback, so it can misbehave in ways no real server library would.

use std::time::Duration;

use futures_util::StreamExt;
use mastostream::proto::Stream;
use mastostream::{Client, Error, ReconnectPolicy, Transport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const SECOND: Duration = Duration::from_secs(1);

/// Serves every connection with `respond(request) -> bytes to write`, then
/// keeps the socket open for `linger`.
async fn script(
    respond: impl Fn(&str) -> Vec<Vec<u8>> + Send + Sync + 'static,
    linger: Duration,
) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let respond = std::sync::Arc::new(respond);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let respond = respond.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let n = socket.read(&mut buf).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]).into_owned();
                for chunk in respond(&request) {
                    if socket.write_all(&chunk).await.is_err() {
                        return;
                    }
                    let _ = socket.flush().await;
                }
                tokio::time::sleep(linger).await;
            });
        }
    });
    format!("http://{addr}")
}

fn sse_client(url: &str) -> mastostream::ClientBuilder {
    Client::builder(url)
        .token("t")
        .streaming_url(url)
        .transport(Transport::Sse)
        .reconnect(ReconnectPolicy::Off)
}

#[tokio::test]
async fn an_html_page_instead_of_a_stream_is_a_clear_error() {
    let url = script(
        |_| vec![b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 15\r\n\r\n<html>hi</html>".to_vec()],
        Duration::ZERO,
    )
    .await;
    let mut events = sse_client(&url).build().unwrap().stream(Stream::Public);
    let error = tokio::time::timeout(SECOND, events.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(&error, Error::NotAStream { content_type } if content_type == "text/html"),
        "{error:?}"
    );
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn an_html_error_page_keeps_its_status() {
    let url = script(
        |_| vec![b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\nContent-Length: 19\r\n\r\n<h1>Bad Gateway</h1>".to_vec()],
        Duration::ZERO,
    )
    .await;
    let mut events = sse_client(&url).build().unwrap().stream(Stream::Public);
    let error = tokio::time::timeout(SECOND, events.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(
            error,
            Error::Http {
                status: 502,
                message: None,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.is_retryable());
}

#[tokio::test]
async fn a_redirect_loop_ends_in_an_error() {
    let url = script(
        |request| {
            let path = request.split(' ').nth(1).unwrap_or("/").to_owned();
            vec![
                format!("HTTP/1.1 302 Found\r\nLocation: {path}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .into_bytes(),
            ]
        },
        Duration::ZERO,
    )
    .await;
    let mut events = sse_client(&url).build().unwrap().stream(Stream::Public);
    let error = tokio::time::timeout(5 * SECOND, events.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert!(matches!(error, Error::Network { .. }), "{error:?}");
    assert!(error.to_string().contains("redirect"), "{error}");
}

#[tokio::test]
async fn an_endless_line_is_dropped_within_the_bound_and_the_stream_goes_on() {
    let url = script(
        |_| {
            let mut chunks =
                vec![b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n:)\nevent: update\ndata: ".to_vec()];
            // 4 MiB of one line, in 64 KiB writes, then a blank line and a good event.
            chunks.extend(std::iter::repeat_n(vec![b'x'; 64 * 1024], 64));
            chunks.push(b"\n\nevent: delete\ndata: 42\n\n".to_vec());
            chunks
        },
        5 * SECOND,
    )
    .await;
    let client = sse_client(&url)
        .reconnect(ReconnectPolicy::Fixed(SECOND))
        .max_event_size(64 * 1024)
        .build()
        .unwrap();
    let mut events = client.stream(Stream::Public);
    let first = tokio::time::timeout(5 * SECOND, events.next())
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(first, Err(Error::EventTooLarge { limit: 65536, .. })),
        "{first:?}"
    );
    let next = tokio::time::timeout(5 * SECOND, events.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(next.payload().as_str(), Some("42"));
}

#[tokio::test]
async fn invalid_utf8_is_skipped_and_the_stream_goes_on() {
    let url = script(
        |_| {
            vec![
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n:)\n".to_vec(),
                b"event: update\ndata: \xff\xfe\xfd\n\nevent: delete\ndata: 7\n\n".to_vec(),
            ]
        },
        5 * SECOND,
    )
    .await;
    let client = sse_client(&url)
        .reconnect(ReconnectPolicy::Fixed(SECOND))
        .build()
        .unwrap();
    let mut events = client.stream(Stream::Public);
    let first = tokio::time::timeout(SECOND, events.next())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(&first, Err(e) if e.is_malformed()), "{first:?}");
    let next = tokio::time::timeout(SECOND, events.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(next.payload().as_str(), Some("7"));
}
