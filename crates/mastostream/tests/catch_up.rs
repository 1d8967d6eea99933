//! Gap-free streaming: what is published during an outage arrives once, in
//! order, after the reconnect, followed by a gap report and the live events.

use std::time::Duration;

use futures_util::StreamExt;
use mastostream::{
    CatchUpConfig, Client, ConnectionState, Event, EventKind, EventStream, Item, ReconnectPolicy,
    Transport,
};
use mastostream_proto::{Channel, Gap};
use mastostream_testkit::{Fault, Publish, TestServer};
use serde_json::Value;
use tokio::sync::watch;

const SECOND: Duration = Duration::from_secs(1);
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/entities");

fn entity(name: &str) -> Value {
    let mut value: Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{FIXTURES}/{name}")).unwrap())
            .unwrap();
    // No id: the test server gives each a fresh, rising one.
    value["id"] = Value::Null;
    value
}

fn status(acct: &str, tag: &str) -> Value {
    let mut status = entity("status.json");
    status["account"]["acct"] = acct.into();
    status["tags"] = serde_json::json!([{"name": tag, "url": ""}]);
    status
}

/// How a stream's events are published in a test.
fn publisher(stream: &Channel) -> impl Fn(&TestServer) -> usize {
    let stream = stream.clone();
    move |server| match &stream {
        Channel::User => {
            server.publish(Publish::new("update", status("alice", "x")).to(Channel::User))
        }
        Channel::UserNotification => server.publish(
            Publish::new("notification", entity("notification.json")).to(Channel::UserNotification),
        ),
        Channel::List(id) => server
            .publish(Publish::new("update", status("alice", "x")).to(Channel::List(id.clone()))),
        Channel::Hashtag(tag) => {
            server.publish(Publish::new("update", status("bob@remote.example", tag)))
        }
        // public and public:local: a local public status fans out to both.
        _ => server.publish(Publish::new("update", status("alice", "x"))),
    }
}

/// The next event (the transient items skipped), or panics after two
/// seconds or at the end of the stream.
async fn next_event(events: &mut EventStream) -> Event {
    loop {
        let item = tokio::time::timeout(2 * SECOND, events.next())
            .await
            .expect("no event in time")
            .expect("ended");
        match item {
            Ok(Item::Event(event)) => return event,
            Ok(_) => {}
            Err(error) => panic!("the stream ended with {error}"),
        }
    }
}

/// The events caught up before the next gap, and the gap.
async fn until_gap(events: &mut EventStream) -> (Vec<Event>, Gap) {
    let mut caught = Vec::new();
    loop {
        let event = next_event(events).await;
        match event.kind().unwrap() {
            EventKind::Gap(gap) => return (caught, gap.clone()),
            _ => caught.push(event),
        }
    }
}

/// A `public:local` stream over SSE with catch-up, on `server` given
/// `fault` first; returned once it is open.
async fn open_after_fault(
    server: &TestServer,
    fault: Fault,
) -> (Client, EventStream, watch::Receiver<ConnectionState>) {
    server.fault(fault).unwrap();
    let client = client(server, Transport::Sse, CatchUpConfig::default()).await;
    let events = client.stream(Channel::PublicLocal);
    let mut state = events.watch_state();
    tokio::time::timeout(5 * SECOND, state.wait_for(|s| s.is_open()))
        .await
        .unwrap()
        .unwrap();
    (client, events, state)
}

fn id_of(event: &Event) -> u64 {
    match event.kind().unwrap() {
        EventKind::Update(s) => s.id.parse().unwrap(),
        EventKind::Notification(n) => n.id.parse().unwrap(),
        other => panic!("not a status or notification: {other:?}"),
    }
}

/// The outage: the stream is cut and the next four connects are refused, so
/// the client stays away for a while; returns once it has noticed.
async fn cut(server: &TestServer, state: &mut watch::Receiver<ConnectionState>) {
    let refused = Fault::Reject {
        status: 503,
        count: 4,
        retry_after: None,
        headers: Vec::new(),
    };
    server.fault(refused).unwrap();
    server.fault(Fault::Disconnect).unwrap();
    tokio::time::timeout(SECOND, state.wait_for(|s| !s.is_open()))
        .await
        .unwrap()
        .unwrap();
}

async fn client(server: &TestServer, transport: Transport, config: CatchUpConfig) -> Client {
    Client::builder(server.url())
        .token("t")
        .transport(transport)
        .reconnect(ReconnectPolicy::Fixed(Duration::from_millis(40)))
        .catch_up_with(config)
        .build()
        .unwrap()
}

/// A test server and a stream with catch-up, open and taken by the server.
struct Setup {
    server: TestServer,
    client: Client,
    events: EventStream,
    state: watch::Receiver<ConnectionState>,
}

async fn open(stream: Channel, transport: Transport, config: CatchUpConfig) -> Setup {
    let server = TestServer::builder().start().await.unwrap();
    let client = client(&server, transport, config).await;
    let timelines = if stream == Channel::User { 2 } else { 1 };
    let events = client.stream(stream);
    let mut state = events.watch_state();
    tokio::time::timeout(SECOND, state.wait_for(|s| s.is_open()))
        .await
        .unwrap()
        .unwrap();
    // The server holds the subscription, and the catch-up has fetched where
    // each timeline the stream covers stood (one page each).
    assert!(server.wait_for_subscriptions(1, SECOND).await);
    assert!(server.wait_for_pages(timelines, SECOND).await);
    Setup {
        server,
        client,
        events,
        state,
    }
}

/// Live events, an outage with `missed` events, then the catch-up and more live events.
async fn outage(
    stream: Channel,
    transport: Transport,
    missed: usize,
    config: CatchUpConfig,
) -> (Vec<Event>, Gap) {
    let Setup {
        server,
        client: _client,
        mut events,
        mut state,
    } = open(stream.clone(), transport, config).await;
    let publish = publisher(&stream);
    let mut delivered = Vec::new();
    for _ in 0..2 {
        assert!(publish(&server) >= 1, "{stream}: live event not delivered");
        delivered.push(next_event(&mut events).await);
    }
    cut(&server, &mut state).await;
    for _ in 0..missed {
        publish(&server);
    }
    let mut gap = None;
    while gap.is_none() {
        let event = next_event(&mut events).await;
        match event.kind().unwrap() {
            EventKind::Gap(g) => gap = Some(g.clone()),
            _ => {
                assert!(
                    event.is_caught_up(),
                    "{stream}: a live event before the gap report"
                );
                delivered.push(event);
            }
        }
    }
    assert!(server.wait_for_subscriptions(1, SECOND).await);
    for _ in 0..2 {
        publish(&server);
        let event = next_event(&mut events).await;
        assert!(!event.is_caught_up());
        delivered.push(event);
    }
    (delivered, gap.unwrap())
}

fn assert_exactly_once_in_order(what: impl std::fmt::Display, events: &[Event], total: usize) {
    let ids: Vec<u64> = events.iter().map(id_of).collect();
    assert_eq!(ids.len(), total, "{what}: {ids:?}");
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "{what}: not once and in order: {ids:?}"
    );
}

#[tokio::test]
async fn every_catch_up_stream_over_sse() {
    for stream in [
        Channel::UserNotification,
        Channel::Public,
        Channel::PublicLocal,
        Channel::Hashtag("rust".into()),
        Channel::List("7".into()),
    ] {
        let (events, gap) =
            outage(stream.clone(), Transport::Sse, 5, CatchUpConfig::default()).await;
        assert_exactly_once_in_order(&stream, &events, 9);
        assert!(gap.complete, "{stream}");
        assert!(gap.since <= gap.until);
    }
}

#[tokio::test]
async fn user_stream_catches_up_home_and_notifications() {
    let Setup {
        server,
        client: _client,
        mut events,
        mut state,
    } = open(Channel::User, Transport::Sse, CatchUpConfig::default()).await;
    server.publish(Publish::new("update", status("alice", "x")).to(Channel::User));
    server.publish(Publish::new("notification", entity("notification.json")).to(Channel::User));
    let live = [next_event(&mut events).await, next_event(&mut events).await];
    cut(&server, &mut state).await;
    for _ in 0..3 {
        server.publish(Publish::new("update", status("alice", "x")).to(Channel::User));
        server.publish(Publish::new("notification", entity("notification.json")).to(Channel::User));
    }
    let mut caught = Vec::new();
    loop {
        let event = next_event(&mut events).await;
        if let EventKind::Gap(gap) = event.kind().unwrap() {
            assert!(gap.complete);
            break;
        }
        caught.push(event);
    }
    let statuses: Vec<&Event> = live
        .iter()
        .chain(&caught)
        .filter(|e| e.name() == "update")
        .collect();
    let notifications: Vec<&Event> = live
        .iter()
        .chain(&caught)
        .filter(|e| e.name() == "notification")
        .collect();
    assert_eq!((statuses.len(), notifications.len()), (4, 4), "{caught:?}");
    for group in [statuses, notifications] {
        let ids: Vec<u64> = group.iter().map(|e| id_of(e)).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    }
}

#[tokio::test]
async fn catch_up_over_the_websocket() {
    let (events, gap) = outage(
        Channel::PublicLocal,
        Transport::WebSocket,
        5,
        CatchUpConfig::default(),
    )
    .await;
    assert_exactly_once_in_order(&Channel::PublicLocal, &events, 9);
    assert!(gap.complete);
}

#[tokio::test]
async fn an_outage_beyond_the_cap_is_an_incomplete_gap() {
    // No overlap: every page of the cap brings missed records.
    let config = CatchUpConfig::default()
        .page_size(2)
        .max_pages(2)
        .overlap(0);
    let (events, gap) = outage(Channel::Public, Transport::Sse, 9, config).await;
    assert!(!gap.complete, "9 missed events cannot fit in 2 pages of 2");
    // What was fetched is still once and in order.
    let ids: Vec<u64> = events.iter().map(id_of).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    assert_eq!(ids.len(), 2 + 4 + 2);
}

/// A post that federates late gets an id dated by its `created_at`, behind
/// ids already delivered (GoToSocial and Mastodon both date remote ids so).
/// Published during an outage, it is fetched back when the catch-up
/// overlaps the last records delivered, and lost without the overlap; the
/// records of the overlap are not delivered twice, nor is a post whose URI
/// was delivered under another id.
#[tokio::test]
async fn a_back_dated_post_of_an_outage_is_caught_by_the_overlap() {
    for overlap in [20, 0] {
        let Setup {
            server,
            client: _client,
            mut events,
            mut state,
        } = open(
            Channel::Public,
            Transport::Sse,
            CatchUpConfig::default().overlap(overlap),
        )
        .await;
        // Ids as a server dates them, 10 apart, so that one fits between.
        let base = 117_000_000_000_000_000u64;
        let post = |id: u64| {
            let mut status = status("alice", "x");
            status["id"] = id.to_string().into();
            status["uri"] = format!("https://example.com/statuses/{id}").into();
            Publish::new("update", status)
        };
        let live: Vec<u64> = (1..=3).map(|n| base + 10 * n).collect();
        for &id in &live {
            assert!(server.publish(post(id)) >= 1);
            assert_eq!(id_of(&next_event(&mut events).await), id);
        }
        cut(&server, &mut state).await;
        // The late post's id: between the first two delivered.
        server.publish(post(live[0] + 5));
        server.publish(post(live[2] + 10));
        // The same post (its URI) under another id: not delivered again.
        let mut again = post(live[2] + 20);
        again.payload["uri"] = format!("https://example.com/statuses/{}", live[1]).into();
        server.publish(again);
        let mut caught = Vec::new();
        loop {
            let event = next_event(&mut events).await;
            if let EventKind::Gap(_) = event.kind().unwrap() {
                break;
            }
            caught.push(id_of(&event));
        }
        if overlap > 0 {
            assert_eq!(caught, [live[0] + 5, live[2] + 10]);
        } else {
            assert_eq!(
                caught,
                [live[2] + 10],
                "without overlap the late post is missed"
            );
        }
    }
}

#[tokio::test]
async fn a_delete_during_an_outage_is_reported_as_a_gap() {
    let Setup {
        server,
        client: _client,
        mut events,
        mut state,
    } = open(Channel::Public, Transport::Sse, CatchUpConfig::default()).await;
    server.publish(Publish::new("update", status("alice", "x")));
    let first = next_event(&mut events).await;
    cut(&server, &mut state).await;
    let EventKind::Update(status) = first.kind().unwrap() else {
        panic!()
    };
    server.publish(Publish::new("delete", status.id.clone()));
    let event = next_event(&mut events).await;
    // Nothing to fetch back, but the application learns it may have missed something.
    assert!(
        matches!(event.kind().unwrap(), EventKind::Gap(gap) if gap.complete),
        "{event:?}"
    );
}

/// An outage during which three statuses are published and the first
/// catch-up page is refused with `refusal`: how many were caught up,
/// whether the gap was complete, and how long from the outage to the gap.
async fn outage_with_refused_page(
    config: CatchUpConfig,
    refusal: Fault,
) -> (usize, bool, Duration) {
    let Setup {
        server,
        client: _client,
        mut events,
        mut state,
    } = open(Channel::Public, Transport::Sse, config).await;
    server.publish(Publish::new("update", status("alice", "x")));
    next_event(&mut events).await;
    server.fault(refusal).unwrap();
    cut(&server, &mut state).await;
    let outage_started = std::time::Instant::now();
    for _ in 0..3 {
        server.publish(Publish::new("update", status("alice", "x")));
    }
    let mut caught = 0;
    loop {
        // The break and the refused reconnects are reported on the way
        // (`Item::Reconnecting`); skip them. An `Err` would be the end.
        let item = tokio::time::timeout(4 * SECOND, events.next())
            .await
            .expect("no gap within 4 s")
            .expect("the stream ended");
        let event = match item {
            Ok(Item::Event(event)) => event,
            Ok(_) => continue,
            Err(error) => panic!("the stream ended with {error}"),
        };
        match event.kind().unwrap() {
            EventKind::Gap(gap) => return (caught, gap.complete, outage_started.elapsed()),
            _ => caught += 1,
        }
    }
}

fn refused_page(retry_after: Option<u64>, headers: Vec<(String, String)>) -> Fault {
    Fault::RejectRest {
        status: 429,
        count: 1,
        retry_after,
        headers,
    }
}

#[tokio::test]
async fn rate_limited_catch_up_waits_and_goes_on() {
    let (caught, complete, took) =
        outage_with_refused_page(CatchUpConfig::default(), refused_page(Some(1), Vec::new())).await;
    assert!(complete);
    assert_eq!(caught, 3);
    assert!(took >= SECOND, "Retry-After was not honoured");
}

/// Issue #13, defect 2 on the REST side: a rate-limited catch-up page with
/// any `Retry-After` or `X-RateLimit-Reset` (huge, negative, garbage, past
/// or far-future dates) waits at most the configured maximum, then the page
/// is fetched and the gap is reported complete; nothing panics or hangs.
#[tokio::test]
async fn hostile_rate_limit_headers_on_catch_up_are_clamped() {
    let max_wait = Duration::from_millis(300);
    let matrix: [(&str, &str); 12] = [
        ("retry-after", "9223372036854775807"),
        ("retry-after", "99999999999999999999999999999"),
        ("retry-after", "-1"),
        ("retry-after", "abc"),
        ("retry-after", "Fri, 31 Dec 9999 23:59:59 GMT"),
        ("retry-after", "Sun, 06 Nov 1994 08:49:37 GMT"),
        ("retry-after", "\u{7f}garbage"),
        ("x-ratelimit-reset", "9999-12-31T23:59:59.000000Z"),
        ("x-ratelimit-reset", "1970-01-01T00:00:00Z"),
        ("x-ratelimit-reset", "tomorrow"),
        ("x-ratelimit-reset", "-5"),
        ("x-ratelimit-remaining", "-1"),
    ];
    for (name, value) in matrix {
        let config = CatchUpConfig::default().max_rate_limit_wait(max_wait);
        let header = vec![(name.to_owned(), value.to_owned())];
        let (caught, complete, took) =
            outage_with_refused_page(config, refused_page(None, header)).await;
        assert!(complete, "{name}: {value:?}: the gap is incomplete");
        assert_eq!(caught, 3, "{name}: {value:?}");
        // The outage (four refused connects 40 ms apart) plus at most the
        // clamped wait, with room for a loaded machine.
        assert!(took < max_wait + 2 * SECOND, "{name}: {value:?}: {took:?}");
    }
}

#[tokio::test]
async fn catch_up_can_be_chosen_per_stream() {
    let server = TestServer::builder().start().await.unwrap();
    let client = Client::builder(server.url())
        .token("t")
        .reconnect(ReconnectPolicy::Fixed(Duration::from_millis(40)))
        .build()
        .unwrap();
    let mut with =
        client.stream_with_catch_up(Channel::PublicLocal, Some(CatchUpConfig::default()));
    let mut without = client.stream(Channel::PublicLocal);
    assert!(server.wait_for_subscriptions(2, SECOND).await);
    assert!(server.wait_for_pages(1, SECOND).await);
    server.publish(Publish::new("update", status("alice", "x")));
    next_event(&mut with).await;
    next_event(&mut without).await;
    server
        .fault(Fault::Reject {
            status: 503,
            count: 6,
            retry_after: None,
            headers: Vec::new(),
        })
        .unwrap();
    server.fault(Fault::Disconnect).unwrap();
    // Both are out, and stay out while the reconnects are refused.
    assert!(server.wait_until(SECOND, |open| open.is_empty()).await);
    server.publish(Publish::new("update", status("alice", "x")));
    let caught = next_event(&mut with).await;
    assert!(caught.is_caught_up());
    assert!(matches!(
        next_event(&mut with).await.kind().unwrap(),
        EventKind::Gap(_)
    ));
    // Without catch-up the missed status is gone: the next event is a live one.
    assert!(server.wait_for_subscriptions(2, 2 * SECOND).await);
    server.publish(Publish::new("update", status("alice", "y")));
    let live = next_event(&mut without).await;
    assert!(!live.is_caught_up());
    let EventKind::Update(s) = live.kind().unwrap() else {
        panic!()
    };
    assert!(
        s.tags.iter().any(|t| t.name == "y"),
        "the missed status came through: {s:?}"
    );
}

/// A server that takes the subscription late: it opens the connection but
/// reads no subscribe frame until a stall is over, long after the catch-up
/// has paged. What is published in between reaches neither the REST page nor
/// the live stream, unless the first live event is bridged back to the
/// catch-up. Nothing may be lost, on either transport.
#[tokio::test]
async fn a_subscription_taken_late_loses_nothing() {
    for transport in [Transport::WebSocket, Transport::Sse] {
        let Setup {
            server,
            client: _client,
            mut events,
            state: _,
        } = open(Channel::PublicLocal, transport, CatchUpConfig::default()).await;
        server.publish(Publish::new("update", status("alice", "x")));
        let mut updates = vec![next_event(&mut events).await];
        // Silence the server, then cut: the reconnect lands in the silence.
        server.fault(Fault::Stall { seconds: 1.5 }).unwrap();
        server.fault(Fault::Disconnect).unwrap();
        let mut published = 1;
        for _ in 0..20 {
            server.publish(Publish::new("update", status("alice", "x")));
            published += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let deadline = tokio::time::Instant::now() + 3 * SECOND;
        while updates.len() < published {
            let Ok(Some(item)) = tokio::time::timeout_at(deadline, events.next()).await else {
                break;
            };
            if let Ok(Item::Event(event)) = item
                && event.name() == "update"
            {
                updates.push(event);
            }
        }
        assert_exactly_once_in_order(format!("{transport:?}"), &updates, published);
    }
}

/// When the bridge's page fails, the application hears that the outage's gap
/// is incomplete after all, before the first live event.
#[tokio::test]
async fn a_failed_bridge_reports_the_gap_incomplete() {
    let Setup {
        server,
        client: _client,
        mut events,
        state: _,
    } = open(
        Channel::PublicLocal,
        Transport::WebSocket,
        CatchUpConfig::default(),
    )
    .await;
    server.publish(Publish::new("update", status("alice", "x")));
    next_event(&mut events).await;
    server.fault(Fault::Stall { seconds: 1.5 }).unwrap();
    server.fault(Fault::Disconnect).unwrap();
    // The reconnect's catch-up finds nothing and reports a complete gap.
    let first = next_event(&mut events).await;
    let EventKind::Gap(first) = first.kind().unwrap() else {
        panic!("expected a gap: {first:?}");
    };
    assert!(first.complete);
    server
        .fault(Fault::RejectRest {
            status: 500,
            count: 1,
            retry_after: None,
            headers: Vec::new(),
        })
        .unwrap();
    // Published while the server has not yet taken the subscription.
    for _ in 0..3 {
        server.publish(Publish::new("update", status("alice", "x")));
    }
    // The stall over, the server takes the subscription; then a live event.
    assert!(server.wait_for_subscriptions(1, 5 * SECOND).await);
    server.publish(Publish::new("update", status("alice", "y")));
    let second = next_event(&mut events).await;
    let EventKind::Gap(second) = second.kind().unwrap() else {
        panic!("expected the gap again: {second:?}");
    };
    assert!(!second.complete);
    assert_eq!(second.since, first.since, "not the same outage");
    let live = next_event(&mut events).await;
    assert!(!live.is_caught_up());
    let EventKind::Update(s) = live.kind().unwrap() else {
        panic!("{live:?}")
    };
    assert!(s.tags.iter().any(|t| t.name == "y"), "{s:?}");
}

/// A stream that has delivered nothing yet when the outage comes still gets
/// what was published during it: the catch-up knows where the timeline stood
/// when the stream opened.
#[tokio::test]
async fn a_quiet_stream_catches_up_its_first_outage() {
    for transport in [Transport::Sse, Transport::WebSocket] {
        let Setup {
            server,
            client: _client,
            mut events,
            mut state,
        } = open(Channel::PublicLocal, transport, CatchUpConfig::default()).await;
        cut(&server, &mut state).await;
        for _ in 0..3 {
            server.publish(Publish::new("update", status("alice", "x")));
        }
        let (caught, gap) = until_gap(&mut events).await;
        assert!(gap.complete, "{transport:?}");
        assert!(caught.iter().all(Event::is_caught_up), "{transport:?}");
        assert_exactly_once_in_order(format!("{transport:?}"), &caught, 3);
    }
}

/// A first connection refused a few times is no outage: when it opens, the
/// starting points are fetched as for any first opening (no gap is
/// reported then), and the first real outage is caught up whole.
#[tokio::test]
async fn a_refused_first_connection_still_gets_its_starting_points() {
    let server = TestServer::builder().start().await.unwrap();
    let refused = Fault::Reject {
        status: 503,
        count: 2,
        retry_after: None,
        headers: Vec::new(),
    };
    let (_client, mut events, mut state) = open_after_fault(&server, refused).await;
    assert!(server.wait_for_subscriptions(1, SECOND).await);
    assert!(server.wait_for_pages(1, SECOND).await);
    server.publish(Publish::new("update", status("alice", "x")));
    let live = next_event(&mut events).await;
    assert!(
        matches!(live.kind().unwrap(), EventKind::Update(_)),
        "{live:?}"
    );
    cut(&server, &mut state).await;
    for _ in 0..3 {
        server.publish(Publish::new("update", status("alice", "x")));
    }
    let (caught, gap) = until_gap(&mut events).await;
    assert!(gap.complete);
    assert_exactly_once_in_order("after a refused start", &caught, 3);
}

/// When where the timeline stood cannot be fetched at the start, the first
/// outage before any event is reported as an incomplete gap: what it missed
/// is unknown.
#[tokio::test]
async fn a_stream_with_no_starting_point_reports_its_gap_incomplete() {
    let server = TestServer::builder().start().await.unwrap();
    let failing_page = Fault::RejectRest {
        status: 500,
        count: 1,
        retry_after: None,
        headers: Vec::new(),
    };
    let (_client, mut events, mut state) = open_after_fault(&server, failing_page).await;
    assert!(server.wait_for_pages(1, SECOND).await);
    cut(&server, &mut state).await;
    server.publish(Publish::new("update", status("alice", "x")));
    let event = next_event(&mut events).await;
    assert!(
        matches!(event.kind().unwrap(), EventKind::Gap(gap) if !gap.complete),
        "{event:?}"
    );
}

/// Servers whose ids are not Mastodon's numbers, over the WebSocket (they
/// serve no SSE): GoToSocial's ULIDs and Iceshrimp.NET's 16-character ids,
/// which date a remote post by its `created_at`, and Pleroma's and
/// Akkoma's flake ids, which date it by its arrival. An outage's posts come
/// back exactly once and in the server's order, the back-dated one
/// included, and Iceshrimp.NET's `min_id` pages (oldest first) come back
/// oldest first as everyone else's.
#[tokio::test]
async fn opaque_ids_and_back_dated_posts_are_caught_up() {
    use mastostream_testkit::Flavour;
    for (flavour, id_length) in [
        (Flavour::GoToSocial, 26),
        (Flavour::Pleroma, 18),
        (Flavour::Akkoma, 18),
        (Flavour::Iceshrimp, 16),
    ] {
        let (live, caught) = outage_with_late_post(flavour).await;
        for id in live.iter().chain(&caught) {
            assert_eq!(id.len(), id_length, "{flavour:?}: {id}");
        }
        assert!(
            live.windows(2).all(|w| w[0] < w[1]),
            "{flavour:?}: {live:?}"
        );
        assert_eq!(caught.len(), 2, "{flavour:?}: {caught:?}");
        if matches!(flavour, Flavour::GoToSocial | Flavour::Iceshrimp) {
            // The late post sorts between the first two delivered.
            assert!(
                live[0] < caught[0] && caught[0] < live[1],
                "{live:?} {caught:?}"
            );
        } else {
            assert!(live[2] < caught[0], "{flavour:?}: {live:?} {caught:?}");
        }
        assert!(caught[0] < caught[1], "{flavour:?}: {caught:?}");
        assert!(caught[1] > live[2], "{flavour:?}: {live:?} {caught:?}");
    }
}

/// Three remote posts of a day ago, ten seconds apart, delivered live; an
/// outage in which one dated between the first two and one dated after
/// all are published. The ids delivered live, and those caught up.
async fn outage_with_late_post(
    flavour: mastostream_testkit::Flavour,
) -> (Vec<String>, Vec<String>) {
    let server = TestServer::builder()
        .flavour(flavour)
        .start()
        .await
        .unwrap();
    let client = Client::builder(server.url())
        .token("t")
        .transport(Transport::WebSocket)
        .reconnect(ReconnectPolicy::Fixed(Duration::from_millis(40)))
        .catch_up(true)
        .build()
        .unwrap();
    let mut events = client.stream(Channel::Public);
    let mut state = events.watch_state();
    assert!(server.wait_for_subscriptions(1, SECOND).await);
    assert!(server.wait_for_pages(1, SECOND).await);
    let post = |second: u32| {
        let mut status = status("carol@remote.example", "x");
        status["created_at"] = format!("2026-11-30T12:00:{second:02}.000Z").into();
        Publish::new("update", status)
    };
    let mut live = Vec::new();
    for second in [10, 20, 30] {
        assert!(server.publish(post(second)) >= 1);
        let event = next_event(&mut events).await;
        let EventKind::Update(status) = event.kind().unwrap() else {
            panic!("{event:?}");
        };
        live.push(status.id.clone());
    }
    cut(&server, &mut state).await;
    server.publish(post(15));
    server.publish(post(40));
    let mut caught = Vec::new();
    loop {
        let event = next_event(&mut events).await;
        match event.kind().unwrap() {
            EventKind::Gap(gap) => {
                assert!(gap.complete, "{flavour:?}");
                break;
            }
            EventKind::Update(status) => {
                assert!(event.is_caught_up(), "{flavour:?}");
                caught.push(status.id.clone());
            }
            other => panic!("{flavour:?}: {other:?}"),
        }
    }
    (live, caught)
}

/// A stream that joins a WebSocket already open is told it is connected
/// like the first one, so its catch-up fetches its starting point and its
/// first outage comes back whole. (The multiplexer once only set the late
/// stream's state: its catch-up never started, and, on a multiplexer that
/// had connected before its first stream's subscribe was read, neither did
/// that one's — which made the compatibility matrix report LOST at random.)
#[tokio::test]
async fn a_stream_joining_an_open_websocket_catches_up() {
    let Setup {
        server,
        client,
        events: _first,
        mut state,
    } = open(
        Channel::PublicLocal,
        Transport::WebSocket,
        CatchUpConfig::default(),
    )
    .await;
    let mut late = client.stream(Channel::Hashtag("rust".into()));
    let mut first_items = Vec::new();
    loop {
        let item = tokio::time::timeout(SECOND, late.next())
            .await
            .expect("the late stream said nothing")
            .expect("ended")
            .unwrap();
        let connected = matches!(item, Item::Connected);
        first_items.push(format!("{item:?}"));
        if connected {
            break;
        }
    }
    assert!(server.wait_for_subscriptions(2, SECOND).await);
    assert!(
        server.wait_for_pages(2, SECOND).await,
        "the late stream fetched no starting point; it said {first_items:?}"
    );
    cut(&server, &mut state).await;
    let rust = Channel::Hashtag("rust".into());
    let publish = publisher(&rust);
    for _ in 0..3 {
        publish(&server);
    }
    let mut caught = Vec::new();
    let gap = loop {
        let event = next_event(&mut late).await;
        match event.kind().unwrap() {
            EventKind::Gap(gap) => break gap.clone(),
            _ => caught.push(event),
        }
    };
    assert!(gap.complete);
    assert_exactly_once_in_order("the late stream", &caught, 3);
}

/// A stream resumed after a recorded id: what the timeline holds after it
/// arrives first, caught up and in order, then a complete gap, then the
/// live events; what came before the id does not.
#[tokio::test]
async fn a_stream_resumes_after_a_recorded_id() {
    for transport in [Transport::Sse, Transport::WebSocket] {
        let server = TestServer::builder().start().await.unwrap();
        for _ in 0..4 {
            server.publish(Publish::new("update", status("alice", "x")));
        }
        let body = reqwest::get(format!(
            "{}/api/v1/timelines/public?local=true",
            server.url()
        ))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
        let page: Vec<Value> = serde_json::from_str(&body).unwrap();
        let store: Vec<u64> = page
            .iter()
            .map(|s| s["id"].as_str().unwrap().parse().unwrap())
            .collect();
        // Newest first: resume after the second oldest.
        let after = store[2];
        let client = client(&server, transport, CatchUpConfig::default()).await;
        let mut events = client.stream_resuming(Channel::PublicLocal, after.to_string());
        let (caught, gap) = until_gap(&mut events).await;
        assert!(gap.complete, "{transport:?}");
        assert!(caught.iter().all(Event::is_caught_up), "{transport:?}");
        let ids: Vec<u64> = caught.iter().map(id_of).collect();
        assert_eq!(ids, vec![store[1], store[0]], "{transport:?}");
        assert!(server.wait_for_subscriptions(1, SECOND).await);
        server.publish(Publish::new("update", status("alice", "x")));
        let live = next_event(&mut events).await;
        assert!(
            !live.is_caught_up() && id_of(&live) > store[0],
            "{transport:?}"
        );
    }
}

/// Resuming the user stream after a status id: home pages from it; the
/// notifications, whose ids are of their own sequence (on Mastodon far
/// smaller than a status's), are not paged from it, so the first gap says
/// it is incomplete; they get a starting point then, and the next outage
/// is caught up whole, notifications included.
#[tokio::test]
async fn the_user_stream_resumes_its_home_after_a_status_id() {
    let server = TestServer::builder().start().await.unwrap();
    for _ in 0..2 {
        server.publish(Publish::new("update", status("alice", "x")).to(Channel::User));
    }
    server.publish(
        Publish::new("notification", entity("notification.json")).to(Channel::UserNotification),
    );
    let body = reqwest::Client::new()
        .get(format!("{}/api/v1/timelines/home", server.url()))
        .bearer_auth("t")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let page: Vec<Value> = serde_json::from_str(&body).unwrap();
    let home: Vec<u64> = page
        .iter()
        .map(|s| s["id"].as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(home.len(), 2, "{body}");
    let client = client(&server, Transport::Sse, CatchUpConfig::default()).await;
    let mut events = client.stream_resuming(Channel::User, home[1].to_string());
    let mut state = events.watch_state();
    let (caught, gap) = until_gap(&mut events).await;
    assert!(!gap.complete);
    assert_eq!(caught.iter().map(id_of).collect::<Vec<_>>(), [home[0]]);
    assert!(server.wait_for_subscriptions(1, SECOND).await);
    // Home's and notifications' starting points are known now.
    cut(&server, &mut state).await;
    server.publish(
        Publish::new("notification", entity("notification.json")).to(Channel::UserNotification),
    );
    let (caught, gap) = until_gap(&mut events).await;
    assert!(gap.complete);
    assert!(
        matches!(caught.as_slice(), [n] if matches!(n.kind().unwrap(), EventKind::Notification(_))),
        "{caught:?}"
    );
}

/// With `parse_on_demand`, catch-up reads only the ids of live events: they
/// reach the consumer unbuilt, and the outage is still caught up exactly once.
#[tokio::test]
async fn catch_up_leaves_on_demand_events_unbuilt() {
    for transport in [Transport::Sse, Transport::WebSocket] {
        let server = TestServer::builder().start().await.unwrap();
        let client = Client::builder(server.url())
            .token("t")
            .transport(transport)
            .reconnect(ReconnectPolicy::Fixed(Duration::from_millis(40)))
            .catch_up_with(CatchUpConfig::default())
            .parse_on_demand(true)
            .build()
            .unwrap();
        let mut events = client.stream(Channel::Public);
        let mut state = events.watch_state();
        tokio::time::timeout(SECOND, state.wait_for(|s| s.is_open()))
            .await
            .unwrap()
            .unwrap();
        assert!(server.wait_for_subscriptions(1, SECOND).await);
        assert!(server.wait_for_pages(1, SECOND).await);
        let publish = publisher(&Channel::Public);
        let mut delivered = Vec::new();
        let live = |event: Event, delivered: &mut Vec<Event>| {
            assert!(!event.is_caught_up());
            assert!(!event.is_typed(), "{transport:?}: a live event was built");
            delivered.push(event);
        };
        for _ in 0..2 {
            publish(&server);
            live(next_event(&mut events).await, &mut delivered);
        }
        cut(&server, &mut state).await;
        for _ in 0..4 {
            publish(&server);
        }
        loop {
            let event = next_event(&mut events).await;
            if event.name() == "mastostream.gap" {
                assert!(matches!(event.kind().unwrap(), EventKind::Gap(g) if g.complete));
                break;
            }
            assert!(event.is_caught_up(), "{transport:?}: live before the gap");
            delivered.push(event);
        }
        assert!(server.wait_for_subscriptions(1, SECOND).await);
        for _ in 0..2 {
            publish(&server);
            live(next_event(&mut events).await, &mut delivered);
        }
        assert_exactly_once_in_order(format!("{transport:?}"), &delivered, 8);
    }
}
