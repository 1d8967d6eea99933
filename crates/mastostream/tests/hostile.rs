//! Hostile or broken servers: every case ends in a clear error or a recovery,
//! with bounded memory and no panic. Each server here is a raw TCP script on
//! loopback, so it can misbehave in ways no real server library would.

use std::time::Duration;

use futures_util::StreamExt;
use mastostream::{Client, Error, Event, EventStream, Item, ReconnectPolicy, Transport};
use mastostream_proto::Channel;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

mod common;
use common::next_significant;

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

/// The next event within `within`; panics on anything else but a connection notice.
async fn next_event(events: &mut EventStream, within: Duration) -> Event {
    match next_significant(events, within).await {
        Ok(Item::Event(event)) => event,
        other => panic!("expected an event, got {other:?}"),
    }
}

fn sse_client(url: &str) -> mastostream::ClientBuilder {
    Client::builder(url)
        .token("t")
        .streaming_url(url)
        .transport(Transport::Sse)
        .reconnect(ReconnectPolicy::Off)
}

/// `public` over SSE with reconnecting on: a malformed or oversized event
/// does not end it.
fn reconnecting_sse(url: &str) -> EventStream {
    sse_client(url)
        .reconnect(ReconnectPolicy::Fixed(SECOND))
        .build()
        .unwrap()
        .stream(Channel::Public)
}

/// Closes `events`; what was already queued may still come, but the stream
/// must end within a second.
async fn assert_close_is_prompt(events: &mut EventStream) {
    let closing = std::time::Instant::now();
    events.close();
    while let Ok(Some(_)) = tokio::time::timeout(SECOND, events.next()).await {}
    assert!(
        closing.elapsed() < SECOND,
        "close took {:?}",
        closing.elapsed()
    );
}

/// The oversized event was skipped, and the stream goes on.
fn assert_too_large(item: &Result<Item, Error>, limit: usize) {
    assert!(
        matches!(item, Ok(Item::Skipped(Error::EventTooLarge { limit: l, .. })) if *l == limit),
        "{item:?}"
    );
}

#[tokio::test]
async fn an_html_page_instead_of_a_stream_is_a_clear_error() {
    let url = script(
        |_| vec![b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 15\r\n\r\n<html>hi</html>".to_vec()],
        Duration::ZERO,
    )
    .await;
    let mut events = sse_client(&url).build().unwrap().stream(Channel::Public);
    let error = next_significant(&mut events, SECOND).await.unwrap_err();
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
    let mut events = sse_client(&url).build().unwrap().stream(Channel::Public);
    let error = next_significant(&mut events, SECOND).await.unwrap_err();
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
    let mut events = sse_client(&url).build().unwrap().stream(Channel::Public);
    let error = next_significant(&mut events, 5 * SECOND).await.unwrap_err();
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
    let mut events = client.stream(Channel::Public);
    let first = next_significant(&mut events, 5 * SECOND).await;
    assert_too_large(&first, 64 * 1024);
    let next = next_event(&mut events, 5 * SECOND).await;
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
    let mut events = reconnecting_sse(&url);
    let first = next_significant(&mut events, SECOND).await;
    assert!(
        matches!(&first, Ok(Item::Skipped(e)) if e.is_malformed()),
        "{first:?}"
    );
    let next = next_event(&mut events, SECOND).await;
    assert_eq!(next.payload().as_str(), Some("7"));
}

/// Peak resident memory of this test process, in KiB.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A server that writes an SSE head, then whatever `body` writes.
async fn sse_server<F, Fut>(body: F) -> String
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buf = vec![0u8; 8192];
            let _ = socket.read(&mut buf).await;
            let head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n:)\n";
            if socket.write_all(head).await.is_ok() {
                tokio::spawn(body(socket));
            }
        }
    });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_mib_event_is_dropped_within_the_bound() {
    let url = sse_server(|mut socket| async move {
        let _ = socket.write_all(b"event: update\ndata: ").await;
        let mib = vec![b'a'; 1 << 20];
        for _ in 0..100 {
            if socket.write_all(&mib).await.is_err() {
                return;
            }
        }
        let _ = socket.write_all(b"\n\nevent: delete\ndata: 42\n\n").await;
        tokio::time::sleep(5 * SECOND).await;
    })
    .await;
    let before = peak_rss_kib();
    let mut events = reconnecting_sse(&url);
    let first = next_significant(&mut events, 20 * SECOND).await;
    assert_too_large(&first, 1 << 20);
    let next = next_event(&mut events, 20 * SECOND).await;
    assert_eq!(next.payload().as_str(), Some("42"));
    // The decoder holds at most its 1 MiB limit; whatever else grew (socket
    // and body buffers, the server's own 1 MiB) stays far below the 100 MiB sent.
    let grown = peak_rss_kib().saturating_sub(before);
    assert!(grown < 40 * 1024, "peak memory grew by {grown} KiB");
}

/// A line that never ends: reported once its bytes pass the bound, while it
/// is still coming, not at an end that never comes; the stream stays open
/// (bytes arrive, so it is no stall) and closes at once when asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_line_is_reported_at_the_bound_and_close_is_prompt() {
    let url = sse_server(|mut socket| async move {
        let _ = socket.write_all(b"event: update\ndata: ").await;
        let chunk = vec![b'x'; 64 * 1024];
        while socket.write_all(&chunk).await.is_ok() {}
    })
    .await;
    let before = peak_rss_kib();
    let mut events = reconnecting_sse(&url);
    let first = next_significant(&mut events, 2 * SECOND).await;
    assert_too_large(&first, 1 << 20);
    // Seconds more of the same line: nothing else to report, memory flat.
    let more = tokio::time::timeout(2 * SECOND, events.next()).await;
    assert!(more.is_err(), "{more:?}");
    assert!(events.is_receiving());
    let grown = peak_rss_kib().saturating_sub(before);
    assert!(grown < 16 * 1024, "peak memory grew by {grown} KiB");
    assert_close_is_prompt(&mut events).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_tiny_events_stays_bounded_and_the_process_responsive() {
    let url = sse_server(|mut socket| async move {
        let chunk = b"event: delete\ndata: 1\n\n".repeat(3000);
        let started = std::time::Instant::now();
        while started.elapsed() < 4 * SECOND {
            if socket.write_all(&chunk).await.is_err() {
                return;
            }
        }
    })
    .await;
    let before = peak_rss_kib();
    let client = sse_client(&url).build().unwrap();
    let mut events = client.stream(Channel::Public);
    // A ticker measures how late the runtime runs a 10 ms timer meanwhile.
    let ticker = tokio::spawn(async {
        let mut worst = Duration::ZERO;
        for _ in 0..150 {
            let asked = tokio::time::Instant::now();
            tokio::time::sleep(Duration::from_millis(10)).await;
            worst = worst.max(asked.elapsed().saturating_sub(Duration::from_millis(10)));
        }
        worst
    });
    let mut count = 0u64;
    let started = std::time::Instant::now();
    while count < 300_000 && started.elapsed() < 10 * SECOND {
        match tokio::time::timeout(SECOND, events.next()).await {
            Ok(Some(Ok(Item::Event(_)))) => count += 1,
            Ok(Some(Ok(Item::Connecting | Item::Connected))) => {}
            other => panic!("after {count} events: {other:?}"),
        }
        if count == 50_000 {
            // A consumer that pauses: the queue fills, then TCP pushes back.
            tokio::time::sleep(SECOND).await;
        }
    }
    assert_eq!(count, 300_000, "too slow: {count} events in 10 s");
    assert_close_is_prompt(&mut events).await;
    let worst = ticker.await.unwrap();
    assert!(
        worst < Duration::from_millis(250),
        "a timer ran {worst:?} late"
    );
    let grown = peak_rss_kib().saturating_sub(before);
    assert!(grown < 64 * 1024, "peak memory grew by {grown} KiB");
}

#[tokio::test]
async fn a_one_byte_drip_delivers_and_close_is_prompt() {
    let url = sse_server(|mut socket| async move {
        let event = b"event: delete\ndata: 5\n\n";
        for byte in event.iter().chain(std::iter::repeat(&b':')) {
            if socket.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let client = sse_client(&url).build().unwrap();
    let mut events = client.stream(Channel::Public);
    let event = next_event(&mut events, 5 * SECOND).await;
    assert_eq!(event.payload().as_str(), Some("5"));
    let closing = std::time::Instant::now();
    events.close();
    let end = tokio::time::timeout(SECOND, events.next()).await.unwrap();
    assert!(end.is_none(), "{end:?}");
    assert!(closing.elapsed() < Duration::from_millis(200));
}

#[tokio::test]
async fn a_redirect_to_another_host_does_not_carry_the_token() {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let other = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let other_port = other.local_addr().unwrap().port();
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = other.accept().await {
            let mut buf = vec![0u8; 8192];
            let n = socket.read(&mut buf).await.unwrap_or(0);
            record
                .lock()
                .unwrap()
                .push(String::from_utf8_lossy(&buf[..n]).into_owned());
            let _ = socket
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n:)\nevent: delete\ndata: 9\n\n")
                .await;
            tokio::time::sleep(2 * SECOND).await;
        }
    });
    // `localhost` is another host than `127.0.0.1`, for the redirect rules.
    let url = script(
        move |request| {
            let path = request.split(' ').nth(1).unwrap_or("/").to_owned();
            vec![format!(
                "HTTP/1.1 302 Found\r\nLocation: http://localhost:{other_port}{path}\r\nContent-Length: 0\r\n\r\n"
            )
            .into_bytes()]
        },
        Duration::ZERO,
    )
    .await;
    let client = Client::builder(&url)
        .token("secret-token-123")
        .streaming_url(&url)
        .transport(Transport::Sse)
        .reconnect(ReconnectPolicy::Off)
        .build()
        .unwrap();
    let mut events = client.stream(Channel::Public);
    let event = next_event(&mut events, 5 * SECOND).await;
    assert_eq!(event.payload().as_str(), Some("9"));
    let requests = seen.lock().unwrap().clone();
    assert_eq!(requests.len(), 1);
    let request = requests[0].to_ascii_lowercase();
    assert!(request.contains("accept: text/event-stream"), "{request}");
    assert!(!request.contains("authorization"), "{request}");
    assert!(!request.contains("secret-token-123"), "{request}");
}

/// A WebSocket server: `serve(connection number, socket)` for each connection.
async fn ws_server<F, Fut>(serve: F) -> String
where
    F: Fn(usize, tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>) -> Fut
        + Send
        + Sync
        + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut number = 0;
        while let Ok((socket, _)) = listener.accept().await {
            if let Ok(ws) = tokio_tungstenite::accept_async(socket).await {
                tokio::spawn(serve(number, ws));
                number += 1;
            }
        }
    });
    format!("http://{addr}")
}

fn ws_client(url: &str) -> mastostream::ClientBuilder {
    Client::builder(url)
        .token("t")
        .streaming_url(url)
        .transport(Transport::WebSocket)
        .reconnect(ReconnectPolicy::Fixed(Duration::from_millis(50)))
}

const WS_EVENT: &str = r#"{"stream":["public"],"event":"delete","payload":"77"}"#;

#[tokio::test]
async fn websocket_binary_frames_are_ignored() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    let url = ws_server(|_, mut ws| async move {
        let _ = ws.next().await; // the subscribe
        let _ = ws.send(Message::binary(vec![0xffu8; 4096])).await;
        let _ = ws.send(Message::text(WS_EVENT)).await;
        tokio::time::sleep(2 * SECOND).await;
    })
    .await;
    let mut events = ws_client(&url).build().unwrap().stream(Channel::Public);
    let event = next_event(&mut events, 2 * SECOND).await;
    assert_eq!(event.payload().as_str(), Some("77"));
}

#[tokio::test]
async fn a_huge_websocket_frame_breaks_the_connection_within_the_bound_and_it_comes_back() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    let url = ws_server(|number, mut ws| async move {
        let _ = ws.next().await;
        if number == 0 {
            // 8 MiB of payload: past the 2 MiB frame bound of a 1 MiB event limit.
            let huge = format!(
                r#"{{"stream":["public"],"event":"delete","payload":"{}"}}"#,
                "9".repeat(8 << 20)
            );
            let _ = ws.send(Message::text(huge)).await;
        } else {
            let _ = ws.send(Message::text(WS_EVENT)).await;
        }
        tokio::time::sleep(2 * SECOND).await;
    })
    .await;
    let mut events = ws_client(&url).build().unwrap().stream(Channel::Public);
    // A break, reported, and a reconnect.
    let first = next_significant(&mut events, 5 * SECOND).await;
    assert!(
        matches!(&first, Ok(Item::Reconnecting { reason, .. }) if reason.is_retryable()),
        "{first:?}"
    );
    let event = next_event(&mut events, 5 * SECOND).await;
    assert_eq!(event.payload().as_str(), Some("77"));
}

#[tokio::test]
async fn a_websocket_that_never_answers_is_given_up_and_remade() {
    let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = connections.clone();
    let url = ws_server(move |_, ws| {
        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        async move {
            // Never writes, never pongs: it does not even read (tungstenite
            // answers a ping it reads by itself), and the client's probes go
            // unanswered.
            tokio::time::sleep(5 * SECOND).await;
            drop(ws);
        }
    })
    .await;
    let client = ws_client(&url)
        .stall_timeout(Some(Duration::from_millis(300)))
        .build()
        .unwrap();
    let mut events = client.stream(Channel::Public);
    let first = next_significant(&mut events, 3 * SECOND).await;
    assert!(
        matches!(
            &first,
            Ok(Item::Reconnecting {
                reason: Error::Stalled { .. },
                ..
            })
        ),
        "{first:?}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(connections.load(std::sync::atomic::Ordering::SeqCst) >= 2);
}

/// A WebSocket server flooding a subscription whose consumer does not read,
/// on a connection that carries another: the connection goes on reading
/// (for the other subscription, and the pings), the flooded subscription's
/// queue holds at most its bound, and past it events are dropped for it.
/// Once the consumer reads, the events come in order, and every drop is
/// reported with its exact count (`Item::Lagged`): nothing missing silently.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_flood_at_a_consumer_that_does_not_read_stays_within_the_bound() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    let filler = "x".repeat(64 * 1024);
    let url = ws_server(move |_, mut ws| {
        let filler = filler.clone();
        async move {
            let _ = ws.next().await; // the subscribe
            for n in 0.. {
                let frame =
                    format!(r#"{{"stream":["public"],"event":"delete","payload":"{n}:{filler}"}}"#);
                if ws.send(Message::text(frame)).await.is_err() {
                    return;
                }
            }
        }
    })
    .await;
    let before = peak_rss_kib();
    let multiplex = ws_client(&url).build().unwrap().multiplex();
    let mut events = multiplex.subscribe(Channel::Public);
    // With another subscription on the connection, the flooded one's events
    // past its queue's bound are dropped rather than left in the socket.
    let _other = multiplex.subscribe(Channel::PublicLocal);
    tokio::time::sleep(2 * SECOND).await;
    let grown = peak_rss_kib().saturating_sub(before);
    assert!(grown < 16 * 1024, "peak memory grew by {grown} KiB");
    // 500 events of 64 KiB: far past what the queue holds.
    let mut next = 0u64;
    let mut lost = 0u64;
    while next < 500 {
        match next_significant(&mut events, 2 * SECOND).await {
            Ok(Item::Event(event)) => {
                let payload = event.payload().as_str().unwrap_or_default();
                assert!(
                    payload.starts_with(&format!("{next}:")),
                    "event {next}: {payload:.20}"
                );
                next += 1;
            }
            Ok(Item::Lagged { lost: n, .. }) => {
                assert!(n > 0);
                lost += n;
                next += n;
            }
            other => panic!("after {next}: {other:?}"),
        }
    }
    assert!(lost > 0, "nothing was dropped: the bound did not hold");
}

/// Events the server sent for a stream before it read our unsubscribe are
/// not handed to the one stream left on the connection (a label this
/// version does not know goes to a lone stream, as a server's own name
/// for it).
#[tokio::test]
async fn a_stream_unsubscribed_from_does_not_pass_its_events_to_the_one_left() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel::<String>();
    let url = ws_server(move |_, mut ws| {
        let seen = seen_tx.clone();
        async move {
            while let Some(Ok(Message::Text(frame))) = ws.next().await {
                let frame = frame.to_string();
                let _ = seen.send(frame.clone());
                if frame.contains("unsubscribe") {
                    // In flight when the unsubscribe arrived.
                    let stale =
                        r#"{"stream":["public:allow_local_only"],"event":"delete","payload":"1"}"#;
                    let _ = ws.send(Message::text(stale)).await;
                    let _ = ws.send(Message::text(WS_EVENT)).await;
                }
            }
        }
    })
    .await;
    let client = ws_client(&url).build().unwrap();
    let mut public = client.stream(Channel::Public);
    let local_only = client.stream(Channel::other(
        "public:allow_local_only",
        Vec::<(String, String)>::new(),
    ));
    for _ in 0..2 {
        let frame = tokio::time::timeout(2 * SECOND, seen.recv()).await.unwrap();
        assert!(frame.unwrap().contains("\"subscribe\""));
    }
    drop(local_only);
    let event = next_event(&mut public, 2 * SECOND).await;
    assert_eq!(event.payload().as_str(), Some("77"));
}

/// A successful answer without end (the health check's here) is refused
/// past its bound instead of held whole until the request's time is up.
#[tokio::test]
async fn an_answer_without_end_is_refused_past_its_bound() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let _ = socket.read(&mut buf).await;
                let head = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\n";
                let mut out = socket.write_all(head).await;
                let filler = vec![b'O'; 64 * 1024];
                while out.is_ok() {
                    out = socket.write_all(&filler).await;
                }
            });
        }
    });
    let client = Client::builder(&url).streaming_url(&url).build().unwrap();
    let error = tokio::time::timeout(10 * SECOND, client.health())
        .await
        .expect("the health check held on")
        .unwrap_err();
    assert!(error.to_string().contains("larger than 64 KiB"), "{error}");
}
