//! The streaming client against the test server, over real loopback sockets.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use mastostream::blocking::BlockingClient;
use mastostream::{
    CallbackListener, Client, ConnectionState, Error, EventKind, Item, ReconnectPolicy,
};
use mastostream_proto::{CHANNEL_NAMES, Channel};
use mastostream_testkit::{Fault, Publish, TestServer};

mod common;
use common::next_significant;

const SECOND: Duration = Duration::from_secs(1);

fn client(server: &TestServer) -> mastostream::ClientBuilder {
    Client::builder(server.url())
        .token("token")
        .reconnect(ReconnectPolicy::Fixed(Duration::from_millis(20)))
}

/// The next event's delete id, skipping the transient items; panics after
/// `wait` or at the end of the stream.
async fn next_id(events: &mut mastostream::EventStream, wait: Duration) -> String {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let item = tokio::time::timeout_at(deadline, events.next())
            .await
            .expect("no event in time")
            .expect("stream ended");
        match item {
            Ok(Item::Event(event)) => {
                return event.payload().as_str().unwrap_or_default().to_owned();
            }
            Ok(_) => {}
            Err(error) => panic!("the stream ended with {error}"),
        }
    }
}

/// The reason of the next break (`Item::Reconnecting`), within `wait`;
/// panics on anything else but a connection notice.
async fn next_break(events: &mut mastostream::EventStream, wait: Duration) -> Error {
    match next_significant(events, wait).await {
        Ok(Item::Reconnecting { reason, .. }) => reason,
        other => panic!("expected a reconnect, got {other:?}"),
    }
}

async fn wait_open(events: &mastostream::EventStream) {
    let mut state = events.watch_state();
    tokio::time::timeout(SECOND, state.wait_for(|s| s.is_open()))
        .await
        .expect("never opened")
        .unwrap();
}

#[tokio::test]
async fn every_stream_with_its_path_and_parameters() {
    let server = TestServer::builder().start().await.unwrap();
    let client = client(&server).build().unwrap();
    for name in CHANNEL_NAMES {
        let stream = Channel::from_name(name, Some("Café 42")).unwrap();
        let mut events = client.stream(stream.clone());
        wait_open(&events).await;
        assert!(server.wait_for_connections(1, SECOND).await);
        let listed = server.connections();
        assert_eq!(listed[0].streams, [stream.ws_stream_array()], "{name}");
        assert_eq!(
            server.publish(Publish::new("delete", name).to(stream.clone())),
            1
        );
        assert_eq!(next_id(&mut events, SECOND).await, name);
        drop(events);
        let deadline = Instant::now() + SECOND;
        while !server.connections().is_empty() {
            assert!(
                Instant::now() < deadline,
                "dropping the stream did not close it"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

#[tokio::test]
async fn typed_events_unknown_events_and_malformed_ones() {
    let server = TestServer::builder().start().await.unwrap();
    let mut events = client(&server).build().unwrap().stream(Channel::User);
    wait_open(&events).await;
    let status: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/entities/status.json"
        ))
        .unwrap(),
    )
    .unwrap();
    server.publish(Publish::new("update", status).to(Channel::User));
    server
        .fault(Fault::Raw {
            bytes: "event: update\ndata: {\"id\":\"broken\"\n\n".into(),
        })
        .unwrap();
    server.publish(
        Publish::new("some.future_event", serde_json::json!({"hello": "world"})).to(Channel::User),
    );
    let Ok(Item::Event(first)) = next_significant(&mut events, SECOND).await else {
        panic!("expected the update")
    };
    assert!(matches!(first.kind().unwrap(), EventKind::Update(s) if s.id == "103270115826048975"));
    // Skipped, and the stream goes on: an `Ok` item, not its end.
    let Ok(Item::Skipped(malformed)) = next_significant(&mut events, SECOND).await else {
        panic!("expected the malformed event to be skipped")
    };
    assert!(malformed.is_malformed(), "{malformed}");
    let Ok(Item::Event(unknown)) = next_significant(&mut events, SECOND).await else {
        panic!("expected the unknown event")
    };
    assert_eq!(
        unknown.kind().unwrap(),
        &EventKind::Unknown("some.future_event".into())
    );
    assert_eq!(
        unknown.payload().to_json_value(),
        serde_json::json!({"hello": "world"})
    );
}

#[tokio::test]
async fn reconnects_after_a_disconnect() {
    let server = TestServer::builder().start().await.unwrap();
    let mut events = client(&server).build().unwrap().stream(Channel::Public);
    wait_open(&events).await;
    server.publish(Publish::new("delete", "1").to(Channel::Public));
    assert_eq!(next_id(&mut events, SECOND).await, "1");
    server.fault(Fault::Disconnect).unwrap();
    // The break is reported, then the stream is back.
    let error = next_break(&mut events, SECOND).await;
    assert!(error.is_retryable(), "{error}");
    wait_open(&events).await;
    assert!(server.wait_for_connections(1, SECOND).await);
    server.publish(Publish::new("delete", "2").to(Channel::Public));
    assert_eq!(next_id(&mut events, SECOND).await, "2");
}

#[tokio::test]
async fn unavailable_then_success() {
    let server = TestServer::builder().start().await.unwrap();
    server
        .fault(Fault::Reject {
            status: 503,
            count: 2,
            retry_after: None,
            headers: Vec::new(),
        })
        .unwrap();
    let mut events = client(&server).build().unwrap().stream(Channel::Public);
    for _ in 0..2 {
        let error = next_break(&mut events, SECOND).await;
        assert!(matches!(error, Error::Http { status: 503, .. }), "{error}");
    }
    wait_open(&events).await;
    assert!(server.wait_for_connections(1, SECOND).await);
    server.publish(Publish::new("delete", "3").to(Channel::Public));
    assert_eq!(next_id(&mut events, SECOND).await, "3");
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let server = TestServer::builder().start().await.unwrap();
    server
        .fault(Fault::Reject {
            status: 429,
            count: 1,
            retry_after: Some(1),
            headers: Vec::new(),
        })
        .unwrap();
    let events = client(&server).build().unwrap().stream(Channel::Public);
    let mut state = events.watch_state();
    let rejected_at = Instant::now();
    state
        .wait_for(|s| matches!(s, ConnectionState::Reconnecting { .. }))
        .await
        .unwrap();
    let ConnectionState::Reconnecting { delay, reason, .. } = state.borrow().clone() else {
        unreachable!()
    };
    assert!(delay >= SECOND, "{delay:?}");
    assert!(
        matches!(
            reason,
            Error::Http {
                status: 429,
                retry_after: Some(1),
                ..
            }
        ),
        "{reason}"
    );
    tokio::time::timeout(3 * SECOND, state.wait_for(|s| s.is_open()))
        .await
        .unwrap()
        .unwrap();
    assert!(rejected_at.elapsed() >= SECOND);
}

#[tokio::test]
async fn unauthorized_is_fatal_and_not_retried() {
    let server = TestServer::builder().token("good").start().await.unwrap();
    let client = Client::builder(server.url())
        .token("bad-token-value")
        .reconnect(ReconnectPolicy::Fixed(Duration::from_millis(1)))
        .build()
        .unwrap();
    let mut events = client.stream(Channel::User);
    // The end, with no reconnect before it.
    let error = next_significant(&mut events, SECOND).await.unwrap_err();
    match &error {
        Error::Http {
            status: 401,
            message,
            ..
        } => assert_eq!(message.as_deref(), Some("Invalid access token")),
        other => panic!("{other:?}"),
    }
    let text = error.to_string();
    assert!(
        text.contains("401") && text.contains("read scope"),
        "{text}"
    );
    assert!(!text.contains("bad-token-value"));
    assert!(events.next().await.is_none(), "a 401 must end the stream");
    assert!(matches!(
        events.state(),
        ConnectionState::Closed(Some(Error::Http { status: 401, .. }))
    ));
}

/// Over SSE the server's heartbeat is all there is, so a stall timeout
/// below 20 s is raised to 20 s there: this stall has to outlast that.
#[tokio::test]
async fn stall_is_detected_and_the_stream_reconnects() {
    let server = TestServer::builder()
        .heartbeat(Duration::from_millis(30))
        .start()
        .await
        .unwrap();
    let client = client(&server)
        .stall_timeout(Some(Duration::from_millis(200)))
        .build()
        .unwrap();
    let mut events = client.stream(Channel::Public);
    wait_open(&events).await;
    server.fault(Fault::Stall { seconds: 20.5 }).unwrap();
    let stalled = Instant::now();
    let error = next_break(&mut events, 22 * SECOND).await;
    assert!(matches!(error, Error::Stalled { .. }), "{error}");
    assert!(
        stalled.elapsed() >= 19 * SECOND,
        "an SSE stall timeout below 20 s was not raised: broke after {:?}",
        stalled.elapsed()
    );
    assert!(!events.is_receiving());
    // After the stall the new connection works.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(server.wait_for_connections(1, SECOND).await);
    let deadline = Instant::now() + 2 * SECOND;
    while !events.is_receiving() {
        assert!(Instant::now() < deadline, "not receiving after the stall");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.publish(Publish::new("delete", "4").to(Channel::Public));
    assert_eq!(next_id(&mut events, 2 * SECOND).await, "4");
}

#[tokio::test]
async fn discovery_through_a_second_listener() {
    let streaming = TestServer::builder().start().await.unwrap();
    let web = TestServer::builder()
        .streaming_url(format!("wss://{}", streaming.addr()).replace("wss://", "ws://"))
        .start()
        .await
        .unwrap();
    let client = client(&web).build().unwrap();
    assert_eq!(
        client.streaming_base().await.unwrap().as_str(),
        format!("http://{}/", streaming.addr())
    );
    let mut events = client.stream(Channel::Direct);
    assert!(streaming.wait_for_connections(1, SECOND).await);
    assert!(web.connections().is_empty());
    streaming.publish(Publish::new("delete", "5").to(Channel::Direct));
    assert_eq!(next_id(&mut events, SECOND).await, "5");
    assert!(client.stream_healthy().await);
}

#[tokio::test]
async fn a_redirect_to_another_host_does_not_carry_the_token() {
    // A host that redirects every request to the real streaming server.
    let real = TestServer::builder().token("secret").start().await.unwrap();
    let redirector = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let redirector_addr = redirector.local_addr().unwrap();
    let target = real.url();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut socket, _)) = redirector.accept().await {
            let mut buf = [0u8; 4096];
            let n = socket.read(&mut buf).await.unwrap_or(0);
            let request = String::from_utf8_lossy(&buf[..n]).into_owned();
            let path = request.split(' ').nth(1).unwrap_or("/").to_owned();
            let response = format!(
                "HTTP/1.1 302 Found\r\nLocation: {target}{path}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = socket.write_all(response.as_bytes()).await;
        }
    });
    let client = Client::builder(format!("http://{redirector_addr}"))
        .token("secret")
        .streaming_url(format!("http://{redirector_addr}"))
        .reconnect(ReconnectPolicy::Off)
        .build()
        .unwrap();
    let mut events = client.stream(Channel::User);
    let error = next_significant(&mut events, SECOND).await.unwrap_err();
    // The real server saw no token: the Authorization header stayed behind.
    assert!(
        matches!(&error, Error::Http { status: 401, message: Some(m), .. } if m == "Missing access token"),
        "{error:?}"
    );
}

#[test]
fn blocking_call_returns_only_with_an_error() {
    let server = TestServer::builder().start_blocking().unwrap();
    let client = BlockingClient::new(
        Client::builder(server.url())
            .token("t")
            .reconnect(ReconnectPolicy::Off)
            .build()
            .unwrap(),
    )
    .unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (log, aborts) = (seen.clone(), seen.clone());
    let mut listener = CallbackListener::new()
        .on_delete(move |id| log.lock().unwrap().push(id))
        .on_abort(move |e| {
            aborts
                .lock()
                .unwrap()
                .push(format!("abort: {}", e.is_retryable()))
        });
    std::thread::scope(|scope| {
        scope.spawn(|| {
            assert!(server.wait_for_connections(1, 5 * SECOND));
            server.publish(Publish::new("delete", "6").to(Channel::PublicLocal));
            // Give the event time to arrive before the break.
            std::thread::sleep(Duration::from_millis(100));
            server.fault(Fault::Disconnect).unwrap();
        });
        let error = client.stream_local(&mut listener).unwrap_err();
        assert!(error.is_retryable(), "{error}");
    });
    assert_eq!(*seen.lock().unwrap(), ["6", "abort: true"]);
}

#[test]
fn background_handle_closes_fast_from_another_thread() {
    let server = TestServer::builder().start_blocking().unwrap();
    let client = BlockingClient::new(client_blocking(&server)).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let states = Arc::new(Mutex::new(Vec::new()));
    let state_log = states.clone();
    let listener = CallbackListener::new()
        .on_delete(move |id| log.lock().unwrap().push(id))
        .on_connection_state(move |s| state_log.lock().unwrap().push(format!("{s:?}")));
    let handle = client.spawn_hashtag("rust", listener).unwrap();
    assert!(handle.is_alive());
    assert!(server.wait_for_connections(1, 5 * SECOND));
    let deadline = Instant::now() + 5 * SECOND;
    while !handle.is_receiving() {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(5));
    }
    server.publish(Publish::new("delete", "7").to(Channel::Hashtag("Rust".into())));
    while seen.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(5));
    }
    // Close from another thread while the listener thread is blocked reading.
    let handle = Arc::new(handle);
    let closer = handle.clone();
    let started = Instant::now();
    std::thread::spawn(move || closer.close()).join().unwrap();
    while handle.is_alive() {
        assert!(
            started.elapsed() < Duration::from_millis(100),
            "close took too long"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(!handle.is_receiving());
    assert!(matches!(handle.state(), ConnectionState::Closed(None)));
    let states = states.lock().unwrap();
    assert_eq!(states[..2], ["Connecting".to_owned(), "Open".to_owned()]);
    let handle = Arc::try_unwrap(handle).unwrap();
    // Closed: the stream ends without an error.
    let end = handle.join();
    assert!(end.is_ok(), "{end:?}");
}

fn client_blocking(server: &mastostream_testkit::BlockingTestServer) -> Client {
    Client::builder(server.url())
        .token("t")
        .reconnect(ReconnectPolicy::Fixed(Duration::from_millis(20)))
        .build()
        .unwrap()
}

#[test]
fn blocking_without_reconnect_ends_at_a_malformed_event() {
    let server = TestServer::builder().start_blocking().unwrap();
    let client = BlockingClient::new(
        Client::builder(server.url())
            .token("t")
            .reconnect(ReconnectPolicy::Off)
            .build()
            .unwrap(),
    )
    .unwrap();
    let mut listener = CallbackListener::new();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            assert!(server.wait_for_connections(1, 5 * SECOND));
            server
                .fault(Fault::Raw {
                    bytes: "event: notification\ndata: {}\n\n".into(),
                })
                .unwrap();
        });
        let error = client.stream_user(&mut listener).unwrap_err();
        assert!(error.is_malformed(), "{error}");
    });
}
