//! Stall, backoff and timeout behaviour at the library's real defaults (45 s
//! of silence, backoff from 0.5 s to 60 s, a 20 s greeting), on tokio's
//! paused clock: the runtime jumps over the waits, so these take
//! milliseconds, and every time below is exact, not a wall-clock guess.
//!
//! The servers are raw scripts on loopback in the same runtime, recording
//! the (paused-clock) instant of every request they take.

use std::sync::Arc;
use std::time::Duration;

#[cfg(feature = "websocket")]
use futures_util::SinkExt;
use futures_util::StreamExt;
use mastostream::{Client, Error, EventStream, Item, Transport};
use mastostream_proto::Channel;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

const SECOND: Duration = Duration::from_secs(1);

/// A request the script server took: when, and its head.
struct Taken {
    at: Instant,
    head: String,
}

/// What the script does with a connection after reading its request head.
type Script =
    Arc<dyn Fn(TcpStream, String) -> futures_util::future::BoxFuture<'static, ()> + Send + Sync>;

/// A loopback server that records each request and hands it to `script`.
async fn script_server(script: Script) -> (String, mpsc::UnboundedReceiver<Taken>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let (tx, script) = (tx.clone(), script.clone());
            tokio::spawn(async move {
                let head = read_head(&mut socket).await;
                let _ = tx.send(Taken {
                    at: Instant::now(),
                    head: head.clone(),
                });
                script(socket, head).await;
            });
        }
    });
    (url, rx)
}

/// Reads up to the blank line that ends a request head (no body follows here).
async fn read_head(socket: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match socket.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// Writes `bytes` and then holds the connection open, silent, for a day.
async fn answer_then_hold(mut socket: TcpStream, bytes: &'static [u8]) {
    let _ = socket.write_all(bytes).await;
    let _ = socket.flush().await;
    tokio::time::sleep(Duration::from_secs(86_400)).await;
}

/// `waited` is `delay`, as tokio's timer keeps it: rounded up to its 1 ms tick.
#[track_caller]
fn assert_waited(waited: Duration, delay: Duration) {
    assert!(
        waited >= delay && waited <= delay + Duration::from_millis(1),
        "waited {waited:?} for a delay of {delay:?}"
    );
}

/// A script that answers every request with `bytes`, then holds on. (It
/// answers one request per connection: refusals say `connection: close`,
/// so the client does not send its next attempt on the same connection.)
fn answering(bytes: &'static [u8]) -> Script {
    Arc::new(move |socket, _| Box::pin(answer_then_hold(socket, bytes)))
}

/// A client with every default but the transport.
fn client(url: &str, transport: Transport) -> Client {
    Client::builder(url)
        .token("t")
        .streaming_url(url)
        .transport(transport)
        .build()
        .unwrap()
}

/// The next `Reconnecting` notice, skipping connection notices; panics on
/// events or the end.
async fn next_reconnecting(events: &mut EventStream) -> (u32, Duration, Error) {
    loop {
        match events.next().await {
            Some(Ok(Item::Reconnecting {
                attempt,
                delay,
                reason,
            })) => return (attempt, delay, reason),
            Some(Ok(Item::Connecting | Item::Connected | Item::Heartbeat)) => {}
            other => panic!("expected a reconnect notice, got {other:?}"),
        }
    }
}

const SSE_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n";
const SSE_GREETING: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n:)\n\n";

/// An SSE stream that greets and then says nothing breaks at exactly the
/// default 45 s of silence, and the next attempt comes within the first
/// backoff bound (0.5 s).
#[tokio::test(start_paused = true)]
async fn a_silent_sse_stream_is_declared_stalled_after_45_s() {
    let (url, mut taken) = script_server(answering(SSE_GREETING)).await;
    let mut events = client(&url, Transport::Sse).stream(Channel::Public);
    let (attempt, delay, reason) = next_reconnecting(&mut events).await;
    let first = taken.recv().await.unwrap().at;
    let broke = Instant::now();
    assert_eq!(attempt, 1);
    assert!(
        matches!(reason, Error::Stalled { silent_for } if silent_for == 45 * SECOND),
        "{reason:?}"
    );
    assert_eq!(broke - first, 45 * SECOND);
    assert!(delay <= Duration::from_millis(500), "{delay:?}");
    let second = taken.recv().await.unwrap().at;
    assert_waited(second - broke, delay);
}

/// A server that refuses with 503 is retried with full-jitter backoff: each
/// wait is what the notice announced, within `0.5 s × 2^(attempt−1)`, capped
/// at 60 s, and the attempts count up.
#[tokio::test(start_paused = true)]
async fn refusals_back_off_exponentially_to_the_60_s_cap() {
    let (url, mut taken) = script_server(answering(
        b"HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
    ))
    .await;
    let mut events = client(&url, Transport::Sse).stream(Channel::Public);
    let mut previous = taken.recv().await.unwrap().at;
    let mut capped = 0;
    for expected_attempt in 1..=12u32 {
        let (attempt, delay, reason) = next_reconnecting(&mut events).await;
        assert_eq!(attempt, expected_attempt);
        assert!(
            matches!(reason, Error::Http { status: 503, .. }),
            "{reason:?}"
        );
        let bound = Duration::from_millis(500)
            .saturating_mul(1 << (attempt - 1).min(20))
            .min(60 * SECOND);
        assert!(delay <= bound, "attempt {attempt}: {delay:?} > {bound:?}");
        if bound == 60 * SECOND {
            capped += 1;
        }
        let next = taken.recv().await.unwrap().at;
        assert_waited(next - previous, delay);
        previous = next;
    }
    // 0.5 s × 2^7 = 64 s: attempts 8 to 12 are capped.
    assert_eq!(capped, 5);
}

/// A refusal that announces a body and never sends it is read for 5 s at
/// most, then reported and retried: it once held the stream in
/// `Connecting` for ever.
#[tokio::test(start_paused = true)]
async fn a_refusal_whose_body_never_comes_is_reported_after_5_s() {
    let (url, mut taken) = script_server(answering(
        b"HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-length: 100\r\n\r\n{\"error\":",
    ))
    .await;
    let mut events = client(&url, Transport::Sse).stream(Channel::Public);
    let first = taken.recv().await.unwrap().at;
    let (attempt, _, reason) = next_reconnecting(&mut events).await;
    assert_eq!(attempt, 1);
    assert!(
        matches!(reason, Error::Http { status: 503, .. }),
        "{reason:?}"
    );
    assert_eq!(Instant::now() - first, 5 * SECOND);
}

/// A 429's `Retry-After` is a floor under the backoff: no attempt before it.
/// A day's `Retry-After` is held to the one-hour ceiling.
#[tokio::test(start_paused = true)]
async fn retry_after_is_waited_and_capped_at_an_hour() {
    let (url, mut taken) = script_server(answering(
        b"HTTP/1.1 429 Too Many Requests\r\nretry-after: 120\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
    ))
    .await;
    let mut events = client(&url, Transport::Sse).stream(Channel::Public);
    let first = taken.recv().await.unwrap().at;
    let (_, delay, _) = next_reconnecting(&mut events).await;
    assert!(delay >= 120 * SECOND && delay <= 121 * SECOND, "{delay:?}");
    assert_waited(taken.recv().await.unwrap().at - first, delay);
    drop(events);

    let (url, mut taken) = script_server(answering(
        b"HTTP/1.1 503 Service Unavailable\r\nretry-after: 86400\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
    ))
    .await;
    let mut events = client(&url, Transport::Sse).stream(Channel::Public);
    let first = taken.recv().await.unwrap().at;
    let (_, delay, _) = next_reconnecting(&mut events).await;
    assert_eq!(delay, 3600 * SECOND);
    assert_waited(taken.recv().await.unwrap().at - first, delay);
}

#[cfg(feature = "websocket")]
/// A server whose SSE answers `sse_answer` and holds on, and whose
/// WebSocket works: an Auto stream from it must try SSE, then open the
/// WebSocket exactly 20 s (the greeting timeout) later.
async fn auto_moves_to_the_websocket_at_20_s(sse_answer: &'static [u8]) -> EventStream {
    let (url, mut taken) = script_server(Arc::new(move |socket, head: String| {
        Box::pin(async move {
            if is_websocket(&head) {
                serve_websocket(socket, head, true).await;
            } else {
                answer_then_hold(socket, sse_answer).await;
            }
        })
    }))
    .await;
    let events = client(&url, Transport::Auto).stream(Channel::Public);
    let sse = taken.recv().await.unwrap();
    assert!(!is_websocket(&sse.head), "{}", sse.head);
    let ws = taken.recv().await.unwrap();
    assert!(is_websocket(&ws.head), "{}", ws.head);
    assert_eq!(ws.at - sse.at, 20 * SECOND);
    events
}

#[cfg(feature = "websocket")]
/// Waits for `count` `Connected` notices, with nothing but connection
/// notices before them.
async fn connected(events: &mut EventStream, count: usize) {
    let mut connected = 0;
    while connected < count {
        match events.next().await {
            Some(Ok(Item::Connected)) => connected += 1,
            Some(Ok(Item::Connecting)) => {}
            other => panic!("expected the WebSocket to connect, got {other:?}"),
        }
    }
}

#[cfg(feature = "websocket")]
/// With `Transport::Auto`, an SSE response that opens but never greets
/// (a buffering proxy) is given up after the 20 s greeting timeout, and the
/// stream goes on over the WebSocket at that moment.
#[tokio::test(start_paused = true)]
async fn auto_leaves_an_sse_stream_that_never_greets_after_20_s() {
    let mut events = auto_moves_to_the_websocket_at_20_s(SSE_HEAD).await;
    // Connected over SSE, then over the WebSocket, with no break between.
    connected(&mut events, 2).await;
}

#[cfg(feature = "websocket")]
/// A proxy that buffers the stream holds its response head too (nginx with
/// `proxy_buffering on` towards an HTTP/1.0 upstream does): Auto moves to the
/// WebSocket when no head has come within the 20 s greeting timeout.
#[tokio::test(start_paused = true)]
async fn auto_leaves_an_sse_request_that_gets_no_answer_after_20_s() {
    let mut events = auto_moves_to_the_websocket_at_20_s(b"").await;
    connected(&mut events, 1).await;
}

/// With SSE alone the same silence is waited out to the 30 s request
/// timeout (past the warning at 20 s), then retried.
#[tokio::test(start_paused = true)]
async fn sse_alone_waits_for_an_answer_up_to_the_request_timeout() {
    let (url, mut taken) = script_server(answering(b"")).await;
    let mut events = client(&url, Transport::Sse).stream(Channel::Public);
    let first = taken.recv().await.unwrap();
    let (attempt, _, reason) = next_reconnecting(&mut events).await;
    assert_eq!(attempt, 1);
    assert!(
        reason.to_string().contains("no answer within 30 s"),
        "{reason}"
    );
    let second = taken.recv().await.unwrap();
    let waited = second.at - first.at;
    assert!(
        waited >= 30 * SECOND && waited <= 30 * SECOND + SECOND / 2,
        "{waited:?}"
    );
}

#[cfg(feature = "websocket")]
/// A WebSocket whose server answers pings but sends nothing else stays up
/// (the client's probes keep it), for ten quiet minutes; one whose server
/// stops reading entirely is declared stalled at the 45 s default.
#[tokio::test(start_paused = true)]
async fn a_websocket_is_kept_by_its_probes_and_dropped_when_they_go_unanswered() {
    let (url, mut taken) = script_server(Arc::new(|socket, head: String| {
        Box::pin(serve_websocket(socket, head, true))
    }))
    .await;
    let mut events = client(&url, Transport::WebSocket).stream(Channel::Public);
    taken.recv().await.unwrap();
    let quiet = tokio::time::timeout(600 * SECOND, async {
        loop {
            match events.next().await {
                Some(Ok(Item::Connecting | Item::Connected | Item::Heartbeat)) => {}
                other => return other,
            }
        }
    })
    .await;
    assert!(quiet.is_err(), "the quiet connection broke: {quiet:?}");
    assert!(taken.try_recv().is_err(), "it reconnected");
    drop(events);

    let (url, mut taken) = script_server(Arc::new(|socket, head: String| {
        Box::pin(serve_websocket(socket, head, false))
    }))
    .await;
    let mut events = client(&url, Transport::WebSocket).stream(Channel::Public);
    let opened = taken.recv().await.unwrap().at;
    let (_, _, reason) = next_reconnecting(&mut events).await;
    assert!(
        matches!(reason, Error::Stalled { silent_for } if silent_for == 45 * SECOND),
        "{reason:?}"
    );
    assert_eq!(Instant::now() - opened, 45 * SECOND);
}

#[cfg(feature = "websocket")]
/// A server that floods pings and reads nothing: the client's pongs fill
/// the TCP buffers and its writes stop. The connection is given up 10 s
/// into a write that does not complete (the one task reading for every
/// subscription was held there for ever, its stall detection with it).
#[tokio::test(start_paused = true)]
async fn a_websocket_whose_server_takes_no_writes_is_given_up_after_10_s() {
    let (url, mut taken) = script_server(Arc::new(|mut socket: TcpStream, head: String| {
        Box::pin(async move {
            if !accept_websocket(&mut socket, &head).await {
                return;
            }
            // Unmasked pings with 125 bytes of payload, without end.
            let mut ping = vec![0x89u8, 125];
            ping.extend([b'p'; 125]);
            let pings = ping.repeat(64);
            while socket.write_all(&pings).await.is_ok() {}
        })
    }))
    .await;
    let mut events = client(&url, Transport::WebSocket).stream(Channel::Public);
    let opened = taken.recv().await.unwrap().at;
    // (An hour on the paused clock: without the bound, a failure, not a hang.)
    let (attempt, _, reason) = tokio::time::timeout(3600 * SECOND, next_reconnecting(&mut events))
        .await
        .expect("the connection was never given up");
    assert_eq!(attempt, 1);
    assert!(
        reason
            .to_string()
            .contains("took nothing we wrote for 10 s"),
        "{reason}"
    );
    let waited = Instant::now() - opened;
    assert!(waited >= 10 * SECOND && waited < 11 * SECOND, "{waited:?}");
}

#[cfg(feature = "websocket")]
/// Answers `head`'s WebSocket upgrade; false when the socket broke.
async fn accept_websocket(socket: &mut TcpStream, head: &str) -> bool {
    let key = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("sec-websocket-key")
                .then(|| value.trim().to_owned())
        })
        .unwrap_or_default();
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: {accept}\r\n\r\n"
    );
    socket.write_all(response.as_bytes()).await.is_ok()
}

#[cfg(feature = "websocket")]
fn is_websocket(head: &str) -> bool {
    head.to_ascii_lowercase().contains("upgrade: websocket")
}

#[cfg(feature = "websocket")]
/// Completes the WebSocket handshake for `head`; then, when `answering`,
/// reads every frame (tungstenite answers pings with pongs) and sends
/// nothing of its own; otherwise holds the socket without reading.
async fn serve_websocket(mut socket: TcpStream, head: String, answering: bool) {
    if !accept_websocket(&mut socket, &head).await {
        return;
    }
    let mut ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
        socket,
        tokio_tungstenite::tungstenite::protocol::Role::Server,
        None,
    )
    .await;
    if !answering {
        tokio::time::sleep(Duration::from_secs(86_400)).await;
        return;
    }
    while let Some(Ok(_)) = ws.next().await {
        // Reading is what sends the pongs tungstenite queued.
        if ws.flush().await.is_err() {
            return;
        }
    }
}
