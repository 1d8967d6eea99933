//! The multiplexed WebSocket transport against the test server.

use std::time::Duration;

use futures_util::StreamExt;
use mastostream::{Client, ConnectionState, Error, EventStream, Item, ReconnectPolicy, Transport};
use mastostream_proto::{CHANNEL_NAMES, Channel};
use mastostream_testkit::{Fault, Publish, TestServer};
use serde_json::{Value, json};

mod common;
use common::next_significant;

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
async fn next_break(events: &mut EventStream, wait: Duration) -> Error {
    match next_significant(events, wait).await {
        Ok(Item::Reconnecting { reason, .. }) => reason,
        other => panic!("expected a reconnect, got {other:?}"),
    }
}

/// The next event, within `wait`; panics on anything else but a connection
/// notice.
async fn next_event(events: &mut EventStream, wait: Duration) -> mastostream::Event {
    match next_significant(events, wait).await {
        Ok(Item::Event(event)) => event,
        other => panic!("expected an event, got {other:?}"),
    }
}

/// Waits until the server shows one WebSocket subscribed to exactly `streams`.
async fn server_streams(server: &TestServer, streams: &[Vec<&str>]) {
    let mut wanted: Vec<Vec<String>> = streams
        .iter()
        .map(|s| s.iter().map(|p| p.to_string()).collect())
        .collect();
    wanted.sort();
    let settled = server
        .wait_until(2 * SECOND, |connections| {
            let mut listed: Vec<Vec<String>> =
                connections.iter().flat_map(|c| c.streams.clone()).collect();
            listed.sort();
            connections.len() <= 1 && listed == wanted
        })
        .await;
    assert!(
        settled,
        "server has {:?}, wanted {wanted:?}",
        server.connections()
    );
}

#[tokio::test]
async fn subscribe_and_unsubscribe_at_run_time_on_one_connection() {
    let server = TestServer::builder().start().await.unwrap();
    let multiplex = ws_client(&server).build().unwrap().multiplex();
    let mut user = multiplex.subscribe(Channel::User);
    let mut rust = multiplex.subscribe(Channel::Hashtag("rust".into()));
    server_streams(&server, &[vec!["user"], vec!["hashtag", "rust"]]).await;
    server.publish(Publish::new("delete", "1").to(Channel::User));
    server.publish(Publish::new("delete", "2").to(Channel::Hashtag("rust".into())));
    assert_eq!(next_payload(&mut user).await, "1");
    assert_eq!(next_payload(&mut rust).await, "2");
    assert_eq!(rust.channel(), &Channel::Hashtag("rust".into()));

    let mut local = multiplex.subscribe(Channel::PublicLocal);
    drop(user);
    server_streams(&server, &[vec!["hashtag", "rust"], vec!["public:local"]]).await;
    assert_eq!(
        server.publish(Publish::new("delete", "3").to(Channel::User)),
        0
    );
    server.publish(Publish::new("delete", "4").to(Channel::PublicLocal));
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
    let mut a = multiplex.subscribe(Channel::Hashtag("Rust".into()));
    let mut b = multiplex.subscribe(Channel::Hashtag("rust".into()));
    server_streams(&server, &[vec!["hashtag", "Rust"]]).await;
    assert_eq!(
        server.publish(Publish::new("delete", "5").to(Channel::Hashtag("rust".into()))),
        1
    );
    assert_eq!(next_payload(&mut a).await, "5");
    assert_eq!(next_payload(&mut b).await, "5");
    drop(a);
    // Still subscribed for b.
    tokio::time::sleep(Duration::from_millis(50)).await;
    server_streams(&server, &[vec!["hashtag", "Rust"]]).await;
    server.publish(Publish::new("delete", "6").to(Channel::Hashtag("rust".into())));
    assert_eq!(next_payload(&mut b).await, "6");
    drop(b);
    server_streams(&server, &[]).await;
}

#[tokio::test]
async fn every_stream_name_over_the_shared_websocket() {
    let server = TestServer::builder().start().await.unwrap();
    let client = ws_client(&server).build().unwrap();
    let mut subscriptions: Vec<EventStream> = CHANNEL_NAMES
        .iter()
        .map(|name| client.stream(Channel::from_name(name, Some("42")).unwrap()))
        .collect();
    let wanted: Vec<Vec<&str>> = subscriptions
        .iter()
        .map(|s| s.channel().ws_stream_array())
        .collect();
    server_streams(&server, &wanted).await;
    assert_eq!(
        server.connections().len(),
        1,
        "one connection for all streams"
    );
    for subscription in &mut subscriptions {
        let stream = subscription.channel().clone();
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
    let mut events = client.stream(Channel::User);
    // The end, with no reconnect before it.
    let error = next_significant(&mut events, SECOND).await.unwrap_err();
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
    let mut user = multiplex.subscribe(Channel::User);
    server_streams(&server, &[vec!["user"]]).await;
    server
        .fault(Fault::RejectSubscribe {
            status: 401,
            error: "Access token does not have the required scopes".into(),
            count: 1,
        })
        .unwrap();
    let mut notifications = multiplex.subscribe(Channel::UserNotification);
    let error = next_significant(&mut notifications, SECOND)
        .await
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
    server.publish(Publish::new("delete", "7").to(Channel::User));
    let event = next_event(&mut user, SECOND).await;
    assert_eq!(event.payload().as_str(), Some("7"));
}

#[tokio::test]
async fn disconnect_then_every_subscription_is_resent() {
    let server = TestServer::builder().start().await.unwrap();
    let multiplex = ws_client(&server).build().unwrap().multiplex();
    let mut direct = multiplex.subscribe(Channel::Direct);
    let mut list = multiplex.subscribe(Channel::List("9".into()));
    server_streams(&server, &[vec!["direct"], vec!["list", "9"]]).await;
    server.fault(Fault::Disconnect).unwrap();
    let error = next_break(&mut direct, SECOND).await;
    assert!(error.is_retryable(), "{error}");
    server_streams(&server, &[vec!["direct"], vec!["list", "9"]]).await;
    server.publish(Publish::new("delete", "8").to(Channel::Direct));
    server.publish(Publish::new("delete", "9").to(Channel::List("9".into())));
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
        .stall_timeout(Some(Duration::from_millis(250)))
        .build()
        .unwrap()
        .multiplex();
    let mut user = multiplex.subscribe(Channel::User);
    server_streams(&server, &[vec!["user"]]).await;
    // Pings alone keep it alive past the timeout.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(multiplex.state().is_open());
    server.fault(Fault::Stall { seconds: 0.6 }).unwrap();
    let error = next_break(&mut user, 2 * SECOND).await;
    assert!(matches!(error, Error::Stalled { .. }), "{error}");
    tokio::time::sleep(Duration::from_millis(700)).await;
    server_streams(&server, &[vec!["user"]]).await;
    server.publish(Publish::new("delete", "10").to(Channel::User));
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
    let mut over_sse = sse.stream(Channel::User);
    let mut over_ws = ws.stream(Channel::User);
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
                .to(Channel::User),
        );
    }
    let mut got_sse = Vec::new();
    let mut got_ws = Vec::new();
    for _ in 0..expected.len() {
        got_sse.push(next_event(&mut over_sse, SECOND).await);
        got_ws.push(next_event(&mut over_ws, SECOND).await);
    }
    assert_eq!(got_sse, got_ws, "typed events differ between transports");
    assert_eq!(as_values(got_ws), expected);
}

/// Waits until both the SSE and the WebSocket connection are subscribed to `user`.
async fn server_streams_two(server: &TestServer) {
    let settled = server
        .wait_until(2 * SECOND, |connections| {
            connections
                .iter()
                .filter(|c| c.streams == [vec!["user".to_owned()]])
                .count()
                >= 2
        })
        .await;
    assert!(settled, "{:?}", server.connections());
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
            headers: Vec::new(),
        })
        .unwrap();
    let client = Client::builder(server.url()).token("t").build().unwrap();
    let mut events = client.stream(Channel::User);
    server_streams(&server, &[vec!["user"]]).await;
    assert_eq!(
        server.connections()[0].transport,
        mastostream_testkit::Transport::Websocket
    );
    server.publish(Publish::new("delete", "11").to(Channel::User));
    assert_eq!(next_payload(&mut events).await, "11");
    assert!(events.is_receiving());
}

#[tokio::test]
async fn auto_transport_stays_on_sse_when_it_works() {
    let server = TestServer::builder().start().await.unwrap();
    let client = Client::builder(server.url()).token("t").build().unwrap();
    let mut events = client.stream(Channel::User);
    server_streams(&server, &[vec!["user"]]).await;
    assert_eq!(
        server.connections()[0].transport,
        mastostream_testkit::Transport::Sse
    );
    server.publish(Publish::new("delete", "12").to(Channel::User));
    assert_eq!(next_payload(&mut events).await, "12");
}

/// One subscription whose consumer stops reading must not hold up the
/// others, nor stop the connection answering the server's pings (Mastodon
/// cuts a connection that misses a pong): past its queue's bound its events
/// are dropped, and it is told how many (`Item::Lagged`), in order, so that
/// nothing goes missing silently.
#[tokio::test]
async fn a_consumer_that_stops_reading_holds_up_neither_the_others_nor_the_pings() {
    let server = TestServer::builder()
        .ping_interval(Duration::from_millis(100))
        .start()
        .await
        .unwrap();
    let multiplex = ws_client(&server)
        .queue_limit(8 * 1024)
        .build()
        .unwrap()
        .multiplex();
    let mut slow = multiplex.subscribe(Channel::Hashtag("slow".into()));
    let mut quick = multiplex.subscribe(Channel::Hashtag("quick".into()));
    server_streams(
        &server,
        &[vec!["hashtag", "slow"], vec!["hashtag", "quick"]],
    )
    .await;
    let connection = server.connections()[0].id;
    // Far more than a subscription's queue holds.
    for i in 0..500 {
        server.publish(Publish::new("delete", i.to_string()).to(Channel::Hashtag("slow".into())));
    }
    for i in 0..5 {
        server.publish(Publish::new("delete", i.to_string()).to(Channel::Hashtag("quick".into())));
        assert_eq!(next_payload(&mut quick).await, i.to_string());
    }
    // Ten ping intervals with `slow` unread: the connection must stay.
    tokio::time::sleep(SECOND).await;
    let connections = server.connections();
    assert_eq!(connections.len(), 1, "{connections:?}");
    assert_eq!(connections[0].id, connection, "the connection was cut");
    // Read at last: events in order, and where some were dropped, a report
    // of exactly how many.
    let mut next = 0u64;
    let mut lost = 0u64;
    while next < 500 {
        match next_significant(&mut slow, 2 * SECOND).await {
            Ok(Item::Event(event)) => {
                assert_eq!(event.payload().as_str(), Some(next.to_string().as_str()));
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
    assert_eq!(next, 500);
    assert!(lost > 0, "nothing was dropped: the bound did not hold");
    // The others went on meanwhile, on the same connection.
    server.publish(Publish::new("delete", "5").to(Channel::Hashtag("quick".into())));
    assert_eq!(next_payload(&mut quick).await, "5");
    assert_eq!(server.connections()[0].id, connection);
}

/// A subscription alone on its WebSocket holds nobody up: past its queue's
/// bound the connection stops reading (TCP pushes back on the server), and
/// once it reads again every event arrives, in order, none lost.
#[tokio::test]
async fn a_consumer_alone_on_its_websocket_loses_nothing_past_the_bound() {
    // The server's pings at their usual 30 s: a connection that stops
    // reading answers none until its consumer catches up.
    let server = TestServer::builder().start().await.unwrap();
    let client = ws_client(&server).queue_limit(8 * 1024).build().unwrap();
    let mut slow = client.stream(Channel::Hashtag("slow".into()));
    server_streams(&server, &[vec!["hashtag", "slow"]]).await;
    // Far more than the queue holds.
    for i in 0..500 {
        server.publish(Publish::new("delete", i.to_string()).to(Channel::Hashtag("slow".into())));
    }
    tokio::time::sleep(SECOND).await;
    for i in 0..500 {
        assert_eq!(
            next_event(&mut slow, 2 * SECOND).await.payload().as_str(),
            Some(i.to_string().as_str())
        );
    }
}

/// A consumer alone on its WebSocket that stops reading for longer than the
/// hold limit (a quarter of the stall timeout, here 500 ms) no longer keeps
/// the connection from being read: the server's pings are answered, so the
/// server (which cuts a client that misses a ping, as Mastodon does) keeps
/// the connection, and what did not fit is counted. Before, the connection
/// was not read at all while the consumer was away, and the server cut it
/// at its second ping.
#[tokio::test]
async fn a_consumer_alone_that_stops_for_long_keeps_answering_pings() {
    let server = TestServer::builder()
        .ping_interval(SECOND)
        .start()
        .await
        .unwrap();
    let client = ws_client(&server)
        .queue_limit(8 * 1024)
        .stall_timeout(Some(2 * SECOND))
        .build()
        .unwrap();
    let mut slow = client.stream(Channel::Hashtag("slow".into()));
    server_streams(&server, &[vec!["hashtag", "slow"]]).await;
    let connection = server.connections()[0].id;
    for i in 0..500 {
        server.publish(Publish::new("delete", i.to_string()).to(Channel::Hashtag("slow".into())));
    }
    // The consumer is away for three of the server's pings.
    tokio::time::sleep(3 * SECOND).await;
    let open: Vec<u64> = server.connections().iter().map(|c| c.id).collect();
    assert_eq!(open, [connection], "the server cut the connection");
    let (mut delivered, mut lost) = (0, 0);
    while delivered + lost < 500 {
        match next_significant(&mut slow, 2 * SECOND).await {
            Ok(Item::Event(_)) => delivered += 1,
            Ok(Item::Lagged { lost: n, .. }) => lost += n,
            Ok(Item::Heartbeat) => {}
            other => panic!("after {delivered} events and {lost} lost: {other:?}"),
        }
    }
    assert!(
        lost > 0,
        "nothing was dropped: the consumer held the connection"
    );
    assert_eq!(delivered + lost, 500);
}

/// The server's WebSocket pings are the heartbeat of that transport: a
/// consumer that asked for heartbeats sees one per ping, and one that did
/// not sees only events.
#[tokio::test]
async fn server_pings_are_heartbeats_for_those_who_ask() {
    let server = TestServer::builder()
        .ping_interval(Duration::from_millis(50))
        .start()
        .await
        .unwrap();
    let client = ws_client(&server).build().unwrap();
    let mut with = client.stream(Channel::Public).with_heartbeats(true);
    let mut without = client.stream(Channel::Hashtag("rust".into()));
    server_streams(&server, &[vec!["public"], vec!["hashtag", "rust"]]).await;
    let mut heartbeats = 0;
    while heartbeats < 2 {
        match tokio::time::timeout(2 * SECOND, with.next()).await {
            Ok(Some(Ok(Item::Heartbeat))) => heartbeats += 1,
            Ok(Some(Ok(_))) => {}
            other => panic!("no heartbeat: {other:?}"),
        }
    }
    server.publish(Publish::new("delete", "7").to(Channel::Hashtag("rust".into())));
    match next_significant(&mut without, 2 * SECOND).await {
        Ok(Item::Event(event)) => assert_eq!(event.name(), "delete"),
        other => panic!("expected the delete alone, got {other:?}"),
    }
}
