//! The multiplexed WebSocket transport against the test server.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use mastostream::proto::{STREAM_NAMES, Stream};
use mastostream::{Client, ConnectionState, Error, EventStream, ReconnectPolicy, Transport};
use mastostream_testkit::{Fault, Publish, TestServer};
use serde_json::{Value, json};

const SECOND: Duration = Duration::from_secs(1);

fn ws_client(server: &TestServer) -> mastostream::ClientBuilder {
    Client::builder(server.url())
        .token("token")
        .transport(Transport::WebSocket)
        .reconnect(ReconnectPolicy::Fixed(Duration::from_millis(20)))
}

async fn next_payload(events: &mut EventStream) -> String {
    loop {
        let item = tokio::time::timeout(2 * SECOND, events.next())
            .await
            .expect("no event in time")
            .expect("stream ended");
        if let Ok(event) = item {
            return event.payload().as_str().unwrap_or_default().to_owned();
        }
    }
}

/// Waits until the server shows one WebSocket subscribed to exactly `streams`.
async fn server_streams(server: &TestServer, streams: &[Vec<&str>]) {
    let deadline = Instant::now() + 2 * SECOND;
    loop {
        let connections = server.connections();
        let mut listed: Vec<Vec<String>> =
            connections.iter().flat_map(|c| c.streams.clone()).collect();
        listed.sort();
        let mut wanted: Vec<Vec<String>> = streams
            .iter()
            .map(|s| s.iter().map(|p| p.to_string()).collect())
            .collect();
        wanted.sort();
        if connections.len() <= 1 && listed == wanted {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "server has {connections:?}, wanted {wanted:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn subscribe_and_unsubscribe_at_run_time_on_one_connection() {
    let server = TestServer::builder().start().await.unwrap();
    let multiplex = ws_client(&server).build().unwrap().multiplex();
    let mut user = multiplex.subscribe(Stream::User);
    let mut rust = multiplex.subscribe(Stream::Hashtag("rust".into()));
    server_streams(&server, &[vec!["user"], vec!["hashtag", "rust"]]).await;
    server.publish(Publish::new("delete", "1").to(Stream::User));
    server.publish(Publish::new("delete", "2").to(Stream::Hashtag("rust".into())));
    assert_eq!(next_payload(&mut user).await, "1");
    assert_eq!(next_payload(&mut rust).await, "2");
    assert_eq!(rust.stream(), &Stream::Hashtag("rust".into()));

    let mut local = multiplex.subscribe(Stream::PublicLocal);
    drop(user);
    server_streams(&server, &[vec!["hashtag", "rust"], vec!["public:local"]]).await;
    assert_eq!(
        server.publish(Publish::new("delete", "3").to(Stream::User)),
        0
    );
    server.publish(Publish::new("delete", "4").to(Stream::PublicLocal));
    assert_eq!(next_payload(&mut local).await, "4");
    rust.close();
    assert!(
        tokio::time::timeout(SECOND, rust.next())
            .await
            .unwrap()
            .is_none(),
        "closed subscription ended"
    );
    server_streams(&server, &[vec!["public:local"]]).await;
}

#[tokio::test]
async fn subscriptions_to_one_channel_share_it() {
    let server = TestServer::builder().start().await.unwrap();
    let multiplex = ws_client(&server).build().unwrap().multiplex();
    let mut a = multiplex.subscribe(Stream::Hashtag("Rust".into()));
    let mut b = multiplex.subscribe(Stream::Hashtag("rust".into()));
    server_streams(&server, &[vec!["hashtag", "Rust"]]).await;
    assert_eq!(
        server.publish(Publish::new("delete", "5").to(Stream::Hashtag("rust".into()))),
        1
    );
    assert_eq!(next_payload(&mut a).await, "5");
    assert_eq!(next_payload(&mut b).await, "5");
    drop(a);
    // Still subscribed for b.
    tokio::time::sleep(Duration::from_millis(50)).await;
    server_streams(&server, &[vec!["hashtag", "Rust"]]).await;
    server.publish(Publish::new("delete", "6").to(Stream::Hashtag("rust".into())));
    assert_eq!(next_payload(&mut b).await, "6");
    drop(b);
    server_streams(&server, &[]).await;
}

#[tokio::test]
async fn every_stream_name_over_the_shared_websocket() {
    let server = TestServer::builder().start().await.unwrap();
    let client = ws_client(&server).build().unwrap();
    let mut subscriptions: Vec<EventStream> = STREAM_NAMES
        .iter()
        .map(|name| client.stream(Stream::from_name(name, Some("42")).unwrap()))
        .collect();
    let wanted: Vec<Vec<&str>> = subscriptions
        .iter()
        .map(|s| s.stream().ws_stream_array())
        .collect();
    server_streams(&server, &wanted).await;
    assert_eq!(
        server.connections().len(),
        1,
        "one connection for all streams"
    );
    for subscription in &mut subscriptions {
        let stream = subscription.stream().clone();
        assert_eq!(
            server.publish(Publish::new("delete", stream.to_string()).to(stream.clone())),
            1
        );
        assert_eq!(next_payload(subscription).await, stream.to_string());
    }
}

#[tokio::test]
async fn refused_upgrade_is_a_fatal_401() {
    let server = TestServer::builder().token("good").start().await.unwrap();
    let client = Client::builder(server.url())
        .token("bad")
        .transport(Transport::WebSocket)
        .build()
        .unwrap();
    let mut events = client.stream(Stream::User);
    let error = tokio::time::timeout(SECOND, events.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(&error, Error::Http { status: 401, message: Some(m), .. } if m == "Invalid access token"),
        "{error:?}"
    );
    assert!(
        tokio::time::timeout(SECOND, events.next())
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn error_frame_goes_to_the_subscription_it_refuses() {
    let server = TestServer::builder().start().await.unwrap();
    let multiplex = ws_client(&server).build().unwrap().multiplex();
    let mut user = multiplex.subscribe(Stream::User);
    server_streams(&server, &[vec!["user"]]).await;
    server
        .fault(Fault::RejectSubscribe {
            status: 401,
            error: "Access token does not have the required scopes".into(),
            count: 1,
        })
        .unwrap();
    let mut notifications = multiplex.subscribe(Stream::UserNotification);
    let error = tokio::time::timeout(SECOND, notifications.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(&error, Error::Http { status: 401, .. }),
        "{error:?}"
    );
    assert!(notifications.next().await.is_none());
    assert!(matches!(
        notifications.state(),
        ConnectionState::Closed(Some(_))
    ));
    // The other subscription saw nothing of it and goes on.
    server.publish(Publish::new("delete", "7").to(Stream::User));
    let item = tokio::time::timeout(SECOND, user.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(item.unwrap().payload().as_str(), Some("7"));
}

#[tokio::test]
async fn disconnect_then_every_subscription_is_resent() {
    let server = TestServer::builder().start().await.unwrap();
    let multiplex = ws_client(&server).build().unwrap().multiplex();
    let mut direct = multiplex.subscribe(Stream::Direct);
    let mut list = multiplex.subscribe(Stream::List("9".into()));
    server_streams(&server, &[vec!["direct"], vec!["list", "9"]]).await;
    server.fault(Fault::Disconnect).unwrap();
    let error = tokio::time::timeout(SECOND, direct.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert!(error.is_retryable(), "{error}");
    server_streams(&server, &[vec!["direct"], vec!["list", "9"]]).await;
    server.publish(Publish::new("delete", "8").to(Stream::Direct));
    server.publish(Publish::new("delete", "9").to(Stream::List("9".into())));
    assert_eq!(next_payload(&mut direct).await, "8");
    assert_eq!(next_payload(&mut list).await, "9");
}

#[tokio::test]
async fn silence_past_the_ping_timeout_reconnects_and_resubscribes() {
    let server = TestServer::builder()
        .ping_interval(Duration::from_millis(50))
        .start()
        .await
        .unwrap();
    let multiplex = ws_client(&server)
        .ws_timeout(Some(Duration::from_millis(250)))
        .build()
        .unwrap()
        .multiplex();
    let mut user = multiplex.subscribe(Stream::User);
    server_streams(&server, &[vec!["user"]]).await;
    // Pings alone keep it alive past the timeout.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(multiplex.state().is_open());
    server.fault(Fault::Stall { seconds: 0.6 }).unwrap();
    let error = tokio::time::timeout(2 * SECOND, user.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert!(matches!(error, Error::Stalled { .. }), "{error}");
    tokio::time::sleep(Duration::from_millis(700)).await;
    server_streams(&server, &[vec!["user"]]).await;
    server.publish(Publish::new("delete", "10").to(Stream::User));
    assert_eq!(next_payload(&mut user).await, "10");
}

fn as_values(events: Vec<mastostream::Event>) -> Vec<Value> {
    events
        .into_iter()
        .map(|e| json!({"event": e.name(), "payload": e.payload().to_json_value()}))
        .collect()
}

#[tokio::test]
async fn same_events_over_sse_and_websocket() {
    let server = TestServer::builder().start().await.unwrap();
    let sse = Client::builder(server.url()).token("t").build().unwrap();
    let ws = ws_client(&server).build().unwrap();
    let mut over_sse = sse.stream(Stream::User);
    let mut over_ws = ws.stream(Stream::User);
    assert!(server.wait_for_connections(2, SECOND).await);
    server_streams_two(&server).await;
    let expected: Vec<Value> = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/mastodon-4.6.5/sse-user.expected.jsonl"
    ))
    .unwrap()
    .lines()
    .map(|l| serde_json::from_str(l).unwrap())
    .collect();
    for event in &expected {
        server.publish(
            Publish::new(event["event"].as_str().unwrap(), event["payload"].clone())
                .to(Stream::User),
        );
    }
    let mut got_sse = Vec::new();
    let mut got_ws = Vec::new();
    for _ in 0..expected.len() {
        got_sse.push(
            tokio::time::timeout(SECOND, over_sse.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap(),
        );
        got_ws.push(
            tokio::time::timeout(SECOND, over_ws.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap(),
        );
    }
    assert_eq!(got_sse, got_ws, "typed events differ between transports");
    assert_eq!(as_values(got_ws), expected);
}

/// Waits until both the SSE and the WebSocket connection are subscribed to `user`.
async fn server_streams_two(server: &TestServer) {
    let deadline = Instant::now() + 2 * SECOND;
    while server
        .connections()
        .iter()
        .filter(|c| c.streams == [vec!["user".to_owned()]])
        .count()
        < 2
    {
        assert!(Instant::now() < deadline, "{:?}", server.connections());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn auto_transport_falls_back_to_websocket_when_sse_is_refused() {
    let server = TestServer::builder().start().await.unwrap();
    // A server that serves no SSE answers 404 there.
    server
        .fault(Fault::Reject {
            status: 404,
            count: 1,
            retry_after: None,
        })
        .unwrap();
    let client = Client::builder(server.url()).token("t").build().unwrap();
    let mut events = client.stream(Stream::User);
    server_streams(&server, &[vec!["user"]]).await;
    assert_eq!(
        server.connections()[0].transport,
        mastostream_testkit::Transport::Websocket
    );
    server.publish(Publish::new("delete", "11").to(Stream::User));
    assert_eq!(next_payload(&mut events).await, "11");
    assert!(events.is_receiving());
}

#[tokio::test]
async fn auto_transport_stays_on_sse_when_it_works() {
    let server = TestServer::builder().start().await.unwrap();
    let client = Client::builder(server.url()).token("t").build().unwrap();
    let mut events = client.stream(Stream::User);
    server_streams(&server, &[vec!["user"]]).await;
    assert_eq!(
        server.connections()[0].transport,
        mastostream_testkit::Transport::Sse
    );
    server.publish(Publish::new("delete", "12").to(Stream::User));
    assert_eq!(next_payload(&mut events).await, "12");
}

/// One subscription whose consumer stops reading must not hold up the
/// others, nor stop the connection answering the server's pings (Mastodon
/// cuts a connection that misses a pong): its events wait, bounded, until it
/// reads again, and none is lost.
#[tokio::test]
async fn a_consumer_that_stops_reading_holds_up_neither_the_others_nor_the_pings() {
    let server = TestServer::builder()
        .ping_interval(Duration::from_millis(100))
        .start()
        .await
        .unwrap();
    let multiplex = ws_client(&server).build().unwrap().multiplex();
    let mut slow = multiplex.subscribe(Stream::Hashtag("slow".into()));
    let mut quick = multiplex.subscribe(Stream::Hashtag("quick".into()));
    server_streams(
        &server,
        &[vec!["hashtag", "slow"], vec!["hashtag", "quick"]],
    )
    .await;
    let connection = server.connections()[0].id;
    // Far more than a subscription's queue holds.
    for i in 0..500 {
        server.publish(Publish::new("delete", i.to_string()).to(Stream::Hashtag("slow".into())));
    }
    for i in 0..5 {
        server.publish(Publish::new("delete", i.to_string()).to(Stream::Hashtag("quick".into())));
        assert_eq!(next_payload(&mut quick).await, i.to_string());
    }
    // Ten ping intervals with `slow` unread: the connection must stay.
    tokio::time::sleep(SECOND).await;
    let connections = server.connections();
    assert_eq!(connections.len(), 1, "{connections:?}");
    assert_eq!(connections[0].id, connection, "the connection was cut");
    for i in 0..500 {
        assert_eq!(next_payload(&mut slow).await, i.to_string());
    }
}
