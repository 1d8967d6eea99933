//! The token never reaches a log line (at trace level), an error, a `Debug`
//! or a panic message, over SSE and over the WebSocket, each way it is sent.
//!
//! One test in its own binary: it installs the global tracing subscriber.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use mastostream::{Client, Error, Item, ReconnectPolicy, Transport, WsAuth};
use mastostream_proto::Channel;
use mastostream_testkit::{Fault, Publish, TestServer};

const TOKEN: &str = "tok-8f3a9c1e-very-secret";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Keeps an item's `Debug` text, and every error in it: the end of the
/// stream, and the transient ones (a break, a skipped event) that are items.
fn record(item: Result<Item, Error>, texts: &mut Vec<String>, errors: &mut Vec<Error>) {
    match item {
        Ok(item) => {
            texts.push(format!("{item:?}"));
            match item {
                Item::Reconnecting { reason, .. } => errors.push(reason),
                Item::Skipped(error) => errors.push(error),
                _ => {}
            }
        }
        Err(error) => errors.push(error),
    }
}

#[tokio::test]
async fn token_is_in_no_log_line_error_or_debug() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .init();

    let server = TestServer::builder()
        .token(TOKEN)
        .heartbeat(Duration::from_millis(20))
        .start()
        .await
        .unwrap();
    let client = Client::builder(server.url())
        .token(TOKEN)
        .reconnect(ReconnectPolicy::Fixed(Duration::from_millis(10)))
        .stall_timeout(Some(Duration::from_millis(150)))
        .greeting_timeout(Duration::from_millis(50))
        .build()
        .unwrap();
    let mut texts = vec![format!("{client:?}")];
    let mut errors: Vec<Error> = Vec::new();

    // A working stream, a malformed event, a stall with no greeting after reconnecting, a break.
    let mut events = client.stream(Channel::User);
    assert!(server.wait_for_connections(1, Duration::from_secs(1)).await);
    server.publish(Publish::new("delete", "1").to(Channel::User));
    server
        .fault(Fault::Raw {
            bytes: "event: update\ndata: nope\n\n".into(),
        })
        .unwrap();
    // Over SSE a stall timeout below 20 s is raised to 20 s: a break in the
    // server's silence brings the reconnect that gets no greeting.
    server.fault(Fault::Stall { seconds: 0.4 }).unwrap();
    server.fault(Fault::Disconnect).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while let Ok(Some(item)) = tokio::time::timeout_at(deadline, events.next()).await {
        record(item, &mut texts, &mut errors);
    }
    texts.push(format!("{events:?}"));
    drop(events);

    // The WebSocket, each way of sending the token: an event, a break and
    // the reconnect, then a refused token.
    for auth in [WsAuth::Header, WsAuth::Protocol, WsAuth::Query] {
        for token in [TOKEN.to_owned(), format!("{TOKEN}-wrong")] {
            let client = Client::builder(server.url())
                .token(token.clone())
                .transport(Transport::WebSocket)
                .ws_auth(auth)
                .reconnect(ReconnectPolicy::Fixed(Duration::from_millis(10)))
                .build()
                .unwrap();
            texts.push(format!("{client:?}"));
            let mut events = client.stream(Channel::User);
            if token == TOKEN {
                let mut state = events.watch_state();
                tokio::time::timeout(Duration::from_secs(1), state.wait_for(|s| s.is_open()))
                    .await
                    .unwrap()
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(30)).await;
                server.publish(Publish::new("delete", "2").to(Channel::User));
                server.fault(Fault::Disconnect).unwrap();
            }
            let deadline = tokio::time::Instant::now() + Duration::from_millis(300);
            while let Ok(Some(item)) = tokio::time::timeout_at(deadline, events.next()).await {
                record(item, &mut texts, &mut errors);
            }
            texts.push(format!("{events:?} {:?}", events.state()));
        }
    }

    // A stall, where the stall timeout holds as set: over the WebSocket,
    // which probes a silent server with its own pings.
    let client = Client::builder(server.url())
        .token(TOKEN)
        .transport(Transport::WebSocket)
        .reconnect(ReconnectPolicy::Fixed(Duration::from_millis(10)))
        .stall_timeout(Some(Duration::from_millis(150)))
        .build()
        .unwrap();
    let mut events = client.stream(Channel::User);
    let mut state = events.watch_state();
    tokio::time::timeout(Duration::from_secs(1), state.wait_for(|s| s.is_open()))
        .await
        .unwrap()
        .unwrap();
    server.fault(Fault::Stall { seconds: 0.4 }).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    while let Ok(Some(item)) = tokio::time::timeout_at(deadline, events.next()).await {
        record(item, &mut texts, &mut errors);
    }
    texts.push(format!("{events:?} {:?}", events.state()));
    drop(events);
    assert!(
        errors.iter().any(|e| matches!(e, Error::Stalled { .. })),
        "no stall was seen: {errors:?}"
    );

    // A refused token, both ways it can be sent.
    for in_query in [false, true] {
        let refused = Client::builder(server.url())
            .token(format!("{TOKEN}-wrong"))
            .token_in_query(in_query)
            .build()
            .unwrap();
        let mut events = refused.stream(Channel::Public);
        // The connection notices, then the refusal that ends the stream.
        let error = loop {
            match events.next().await.expect("ended without the refusal") {
                Ok(item) => texts.push(format!("{item:?}")),
                Err(error) => break error,
            }
        };
        errors.push(error);
    }
    assert!(
        errors.iter().filter(|e| e.is_auth()).count() >= 5,
        "not every refused token was seen: {errors:?}"
    );

    // Each error as an unwrap's panic message.
    let panics = Arc::new(Mutex::new(Vec::new()));
    let sink = panics.clone();
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        sink.lock().unwrap().push(info.to_string())
    }));
    for error in &errors {
        texts.push(format!("{error} {error:?}"));
        let result: Result<(), Error> = std::hint::black_box(Err(error.clone()));
        let unwrapped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| result.unwrap()));
        assert!(unwrapped.is_err());
    }
    std::panic::set_hook(default_hook);
    let panics = panics.lock().unwrap().clone();
    assert_eq!(panics.len(), errors.len());
    texts.extend(panics);

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("opening SSE stream"),
        "trace logs were not captured: {logs}"
    );
    assert!(
        logs.contains("WebSocket broke; reconnecting"),
        "no WebSocket break was logged: {logs}"
    );
    assert!(
        logs.contains("buffering proxy"),
        "no warning about the missing greeting: {logs}"
    );
    for text in texts.iter().chain([&logs]) {
        assert!(!text.contains(TOKEN), "the token leaked: {text}");
        assert!(
            !text.contains("tok-8f3a9c1e"),
            "part of the token leaked: {text}"
        );
    }
}

#[test]
fn a_builder_shows_neither_token_nor_proxy_password() {
    let builder = Client::builder("https://mastodon.example")
        .token("s3cret-token")
        .proxy("http://bob:pa#ss@proxy.example:3128");
    let shown = format!("{builder:?}");
    assert!(!shown.contains("s3cret-token"), "{shown}");
    assert!(!shown.contains("pa#ss"), "{shown}");
    assert!(shown.contains("bob:***@proxy.example:3128"), "{shown}");
    // Building refuses the URL (a `#` ends the authority), without the password.
    let error = builder.build().unwrap_err().to_string();
    assert!(!error.contains("pa#ss"), "{error}");
}
