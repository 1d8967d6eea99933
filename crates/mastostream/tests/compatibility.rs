//! docs/COMPATIBILITY.md is written by this test: every cell is the
//! outcome of the client streaming against one of the test server's
//! flavours (mastostream-testkit's flavour.rs says which source each
//! follows), none typed by hand. The test fails when the file in the
//! repository differs from what it finds, or when any stream loses events
//! in silence; `MASTOSTREAM_BLESS=1 cargo test -p mastostream --test
//! compatibility` writes the file anew.

use std::time::Duration;

use futures_util::StreamExt;
use futures_util::future::LocalBoxFuture;
use mastostream::{
    Client, ConnectionState, Error, EventKind, EventStream, Item, ReconnectPolicy, Transport,
    WsAuth,
};
use mastostream_proto::Channel;
use mastostream_testkit::{Fault, Flavour, Publish, TestServer};

mod common;

const SECOND: Duration = Duration::from_secs(1);
/// How long a check waits for anything.
const PATIENCE: Duration = Duration::from_secs(5);
/// What a cell says when an event never came and nothing said why.
const LOST: &str = "LOST";

/// The servers, as the columns name them.
const SERVERS: [(Flavour, &str); 7] = [
    (Flavour::Mastodon, "Mastodon 4.6"),
    (Flavour::Mastodon41, "Mastodon 4.1"),
    (Flavour::GlitchSoc, "glitch-soc"),
    (Flavour::Pleroma, "Pleroma"),
    (Flavour::Akkoma, "Akkoma"),
    (Flavour::GoToSocial, "GoToSocial"),
    (Flavour::Iceshrimp, "Iceshrimp.NET"),
];

async fn server(flavour: Flavour) -> TestServer {
    common::flavoured_server(flavour).await
}

fn client(server: &TestServer, transport: Transport) -> mastostream::ClientBuilder {
    Client::builder(server.url())
        .token("token")
        .transport(transport)
        .reconnect(ReconnectPolicy::Fixed(Duration::from_millis(40)))
}

/// The next item that is an event or an end, within [`PATIENCE`]; `None`
/// on silence.
async fn next_event_or_end(events: &mut EventStream) -> Option<Result<mastostream::Event, Error>> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        match tokio::time::timeout_at(deadline, events.next()).await {
            Err(_) | Ok(None) => return None,
            Ok(Some(Ok(Item::Event(event)))) => return Some(Ok(event)),
            Ok(Some(Err(error))) => return Some(Err(error)),
            Ok(Some(Ok(_))) => {}
        }
    }
}

/// What became of a stream that either opens or is refused.
enum Opened {
    Subscribed,
    Refused(Error),
    Silent,
}

/// Waits until the server holds `count` subscriptions, or the stream ends.
async fn open(server: &TestServer, events: &mut EventStream, count: usize) -> Opened {
    let mut state = events.watch_state();
    tokio::select! {
        held = server.wait_for_subscriptions(count, PATIENCE) => {
            if held { Opened::Subscribed } else { Opened::Silent }
        }
        _ = state.wait_for(|s| s.is_closed()) => {
            match next_event_or_end(events).await {
                Some(Err(error)) => Opened::Refused(error),
                _ => Opened::Silent,
            }
        }
    }
}

/// A refusal as a cell: the client's own words for a stream the server
/// lacks, else the error.
fn refused(error: &Error) -> String {
    match error {
        Error::Unsupported { .. } => "no (the client says so)".to_owned(),
        other => format!("no ({other})"),
    }
}

/// One stream over `transport`: a delete published to `to` reaches it.
async fn delivers(
    flavour: Flavour,
    transport: Transport,
    auth: WsAuth,
    channel: Channel,
    to: Channel,
) -> String {
    let server = server(flavour).await;
    let client = client(&server, transport).ws_auth(auth).build().unwrap();
    let mut events = client.stream(channel);
    match open(&server, &mut events, 1).await {
        Opened::Subscribed => {}
        Opened::Refused(error) => return refused(&error),
        Opened::Silent => return LOST.to_owned(),
    }
    server.publish(Publish::new("delete", "77").to(to));
    match next_event_or_end(&mut events).await {
        Some(Ok(event)) if event.name() == "delete" && event.payload().as_str() == Some("77") => {
            "yes".to_owned()
        }
        Some(Ok(event)) => format!("wrong event: {}", event.name()),
        Some(Err(error)) => refused(&error),
        None => LOST.to_owned(),
    }
}

fn entity(name: &str) -> serde_json::Value {
    let path = format!(
        "{}/../../fixtures/entities/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// An `announcement.reaction` payload: a reaction with its announcement's id.
fn reaction() -> serde_json::Value {
    let mut reaction = entity("reaction")[0].clone();
    reaction["announcement_id"] = "8".into();
    reaction
}

/// Mastodon's events on the user stream: which arrive typed.
async fn events(flavour: Flavour) -> String {
    let server = server(flavour).await;
    let client = client(&server, Transport::Auto).build().unwrap();
    let mut events = client.stream(Channel::User);
    if !matches!(open(&server, &mut events, 1).await, Opened::Subscribed) {
        return LOST.to_owned();
    }
    let mut sent: Vec<(&str, Option<serde_json::Value>)> = vec![
        ("update", Some(entity("status"))),
        ("status.update", Some(entity("status_edited"))),
        ("delete", Some("109".into())),
        ("notification", Some(entity("notification"))),
        ("conversation", Some(entity("conversation"))),
        ("announcement", Some(entity("announcement"))),
        ("announcement.reaction", Some(reaction())),
        ("announcement.delete", Some("8".into())),
        ("filters_changed", None),
    ];
    for (name, payload) in &sent {
        let payload = payload.clone().unwrap_or(serde_json::Value::Null);
        server.publish(Publish::new(*name, payload).to(Channel::User));
    }
    // From 4.3 Mastodon sends nothing published without a payload: no
    // `filters_changed` reaches any client.
    let unsent = !flavour.sends_payload_less();
    if unsent {
        sent.retain(|(_, payload)| payload.is_some());
    }
    let mut missing: Vec<&str> = sent.iter().map(|(name, _)| *name).collect();
    while !missing.is_empty() {
        match next_event_or_end(&mut events).await {
            Some(Ok(event)) if !matches!(event.kind().unwrap(), EventKind::Unknown(_)) => {
                missing.retain(|name| *name != event.name());
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => break,
        }
    }
    if missing.is_empty() && unsent {
        format!(
            "all {} it sends (`filters_changed` never comes: the server drops events without a payload)",
            sent.len()
        )
    } else if missing.is_empty() {
        format!("all {}", sent.len())
    } else {
        format!("{LOST}: {}", missing.join(", "))
    }
}

/// Three streams with `Transport::WebSocket`: each gets its own event, and
/// only it, on one WebSocket where the server can share one.
async fn multiplexed(flavour: Flavour) -> String {
    let server = server(flavour).await;
    let client = client(&server, Transport::WebSocket).build().unwrap();
    let streams = [
        Channel::Public,
        Channel::PublicLocal,
        Channel::List("42".into()),
    ];
    let mut subscriptions: Vec<EventStream> =
        streams.iter().map(|c| client.stream(c.clone())).collect();
    let held = server
        .wait_until(PATIENCE, |open| {
            open.iter().map(|c| c.streams.len()).sum::<usize>() >= 3
        })
        .await;
    let connections = server
        .connections()
        .iter()
        .filter(|c| !c.streams.is_empty())
        .count();
    let taken = server
        .connections()
        .iter()
        .map(|c| c.streams.len())
        .sum::<usize>();
    if !held {
        // Say which were never taken (a subscribe the server ignored).
        return format!("no: {} of 3 subscribes taken", taken);
    }
    // Not deletes: Pleroma and Akkoma send those with no label, so they go
    // to every stream that might carry them.
    for (i, channel) in streams.iter().enumerate() {
        server.publish(Publish::new("announcement.delete", i.to_string()).to(channel.clone()));
    }
    let mut wrong = Vec::new();
    for (i, events) in subscriptions.iter_mut().enumerate() {
        match next_event_or_end(events).await {
            Some(Ok(event)) if event.payload().as_str() == Some(&i.to_string()) => {}
            _ => wrong.push(streams[i].to_string()),
        }
    }
    if wrong.is_empty() {
        match connections {
            1 => "yes (one WebSocket)".to_owned(),
            n => format!("yes ({n} WebSockets: the server cannot share one)"),
        }
    } else {
        format!("no: misrouted to {}", wrong.join(", "))
    }
}

/// An unsubscribe: done by the server, or its events dropped by the client.
async fn unsubscribe(flavour: Flavour) -> String {
    let server = server(flavour).await;
    let client = client(&server, Transport::WebSocket).build().unwrap();
    let mut public = client.stream(Channel::Public);
    let local = client.stream(Channel::PublicLocal);
    if !server.wait_for_subscriptions(2, PATIENCE).await {
        return LOST.to_owned();
    }
    drop(local);
    let honoured = server
        .wait_until(PATIENCE, |open| {
            open.iter().map(|c| c.streams.len()).sum::<usize>() == 1
        })
        .await;
    server.publish(Publish::new("announcement.delete", "gone").to(Channel::PublicLocal));
    server.publish(Publish::new("announcement.delete", "kept").to(Channel::Public));
    match next_event_or_end(&mut public).await {
        Some(Ok(event)) if event.payload().as_str() == Some("kept") => {}
        _ => return "no: the other stream got its events".to_owned(),
    }
    if honoured {
        "yes".to_owned()
    } else {
        "ignored by the server; the client drops its events".to_owned()
    }
}

/// A status for catch-up, from `acct`, created at `second` past noon.
fn remote_post(second: u32) -> Publish {
    let mut status = entity("status");
    // Each post a new one: the server gives it an id (and addresses).
    status["id"] = serde_json::Value::Null;
    status["account"]["acct"] = "carol@remote.example".into();
    status["created_at"] = format!("2026-11-30T12:00:{second:02}.000Z").into();
    Publish::new("update", status)
}

/// An outage in which one post dated between two delivered ones (a late
/// federated one) and one newer are published: both come back, once, in
/// the server's id order, and then a complete gap.
async fn catch_up(flavour: Flavour) -> String {
    let server = server(flavour).await;
    let client = client(&server, Transport::Auto)
        .catch_up(true)
        .build()
        .unwrap();
    let mut events = client.stream(Channel::Public);
    let mut state = events.watch_state();
    if !matches!(open(&server, &mut events, 1).await, Opened::Subscribed) {
        return format!("{LOST}: never subscribed");
    }
    if !server.wait_for_pages(1, PATIENCE).await {
        return format!("{LOST}: no starting page asked for");
    }
    let mut live = Vec::new();
    for second in [10, 20] {
        server.publish(remote_post(second));
        match next_event_or_end(&mut events).await {
            Some(Ok(event)) => match event.kind().unwrap() {
                EventKind::Update(status) => live.push(status.id.clone()),
                other => return format!("no: {other:?}"),
            },
            other => return format!("{LOST}: live post {second}: {other:?}"),
        }
    }
    // Every reconnect is refused until both are published.
    let refuse = |count| Fault::Reject {
        status: 503,
        count,
        retry_after: None,
        headers: Vec::new(),
    };
    server.fault(refuse(1_000)).unwrap();
    server.fault(Fault::Disconnect).unwrap();
    let _ = tokio::time::timeout(PATIENCE, state.wait_for(|s| !s.is_open())).await;
    server.publish(remote_post(15));
    server.publish(remote_post(40));
    server.fault(refuse(0)).unwrap();
    let mut caught = Vec::new();
    loop {
        match next_event_or_end(&mut events).await {
            Some(Ok(event)) => match event.kind().unwrap() {
                EventKind::Gap(gap) if gap.complete => break,
                EventKind::Gap(_) => return "no: an incomplete gap".to_owned(),
                EventKind::Update(status) => caught.push(status.id.clone()),
                _ => {}
            },
            _ => return format!("{LOST}: {} of 2 caught up", caught.len()),
        }
    }
    let order = |a: &String, b: &String| mastostream_proto::id_order(a, b);
    let in_order = caught.len() == 2 && order(&caught[0], &caught[1]).is_lt();
    let fresh = caught.iter().all(|id| !live.contains(id));
    let back_dated = order(&caught[0], &live[1]).is_lt();
    match (in_order && fresh, back_dated) {
        (true, true) => "yes (the late post's id is back-dated)".to_owned(),
        (true, false) => "yes".to_owned(),
        (false, _) => format!("no: {caught:?} after {live:?}"),
    }
}

/// A server that goes silent: the client notices and reconnects. Over the
/// WebSocket, which probes with pings and so takes a short timeout; SSE
/// waits at least 20 s (Mastodon's heartbeat comes every 15 s), which the
/// paused-clock tests check instead.
async fn stall(flavour: Flavour) -> String {
    let server = server(flavour).await;
    let client = client(&server, Transport::WebSocket)
        .stall_timeout(Some(SECOND))
        .build()
        .unwrap();
    let mut events = client.stream(Channel::Public);
    if !matches!(open(&server, &mut events, 1).await, Opened::Subscribed) {
        return LOST.to_owned();
    }
    server.fault(Fault::Stall { seconds: 10.0 }).unwrap();
    let mut state = events.watch_state();
    let noticed = tokio::time::timeout(
        PATIENCE,
        state.wait_for(|s| {
            matches!(
                s,
                ConnectionState::Reconnecting {
                    reason: Error::Stalled { .. },
                    ..
                }
            )
        }),
    )
    .await;
    if noticed.is_ok() {
        "yes".to_owned()
    } else {
        "no".to_owned()
    }
}

type Check = Box<dyn Fn(Flavour) -> LocalBoxFuture<'static, String>>;

/// The rows: a feature and how its cell is found.
fn checks() -> Vec<(String, Check)> {
    let mut rows: Vec<(String, Check)> = Vec::new();
    let stream = |transport: Transport, auth: WsAuth, channel: Channel, to: Channel| -> Check {
        Box::new(move |flavour| {
            Box::pin(delivers(
                flavour,
                transport,
                auth,
                channel.clone(),
                to.clone(),
            ))
        })
    };
    rows.push((
        "SSE".into(),
        stream(
            Transport::Sse,
            WsAuth::Header,
            Channel::Public,
            Channel::Public,
        ),
    ));
    rows.push((
        "WebSocket".into(),
        stream(
            Transport::WebSocket,
            WsAuth::Header,
            Channel::Public,
            Channel::Public,
        ),
    ));
    for channel in [
        Channel::User,
        Channel::UserNotification,
        Channel::Public,
        Channel::PublicMedia,
        Channel::PublicLocal,
        Channel::PublicLocalMedia,
        Channel::PublicRemote,
        Channel::PublicRemoteMedia,
        Channel::Hashtag("rust".into()),
        Channel::HashtagLocal("rust".into()),
        Channel::List("42".into()),
        Channel::Direct,
    ] {
        rows.push((
            format!("stream `{channel}`"),
            stream(Transport::Auto, WsAuth::Header, channel.clone(), channel),
        ));
    }
    let allow_local_only = Channel::Other {
        name: "public:allow_local_only".into(),
        params: Vec::new(),
    };
    rows.push((
        "stream `public:allow_local_only`".into(),
        stream(
            Transport::WebSocket,
            WsAuth::Header,
            allow_local_only,
            Channel::Public,
        ),
    ));
    rows.push((
        "Mastodon's events (user stream)".into(),
        Box::new(|f| Box::pin(events(f))),
    ));
    rows.push((
        "3 streams with `Transport::WebSocket`".into(),
        Box::new(|f| Box::pin(multiplexed(f))),
    ));
    rows.push(("unsubscribe".into(), Box::new(|f| Box::pin(unsubscribe(f)))));
    for (auth, name) in [
        (WsAuth::Header, "`Authorization` header"),
        (WsAuth::Protocol, "`Sec-WebSocket-Protocol`"),
        (WsAuth::Query, "`?access_token=`"),
    ] {
        rows.push((
            format!("WebSocket token by {name}"),
            stream(Transport::WebSocket, auth, Channel::User, Channel::User),
        ));
    }
    rows.push((
        "catch-up after an outage, exactly once, in order".into(),
        Box::new(|f| Box::pin(catch_up(f))),
    ));
    rows.push((
        "stall detection and reconnect (WebSocket)".into(),
        Box::new(|f| Box::pin(stall(f))),
    ));
    rows
}

fn render(rows: &[(String, Vec<String>)]) -> String {
    let mut text = String::from(
        "# Compatibility\n\n\
         What the client does against each server the test server emulates. Every\n\
         cell is the outcome of a check in `crates/mastostream/tests/compatibility.rs`,\n\
         which writes this file (`MASTOSTREAM_BLESS=1 cargo test -p mastostream --test\n\
         compatibility`) and fails when it no longer says what the checks find. \"yes\":\n\
         an event published to the stream reached it; \"no (the client says so)\": the\n\
         server lacks the stream and the stream ends at once with an error naming the\n\
         server and the stream; \"no (…)\": the server's own refusal. A cell never\n\
         reads LOST: that would be an event gone without a word, and fails the test.\n\
         The `Authorization` header is the client's default: where discovery finds a\n\
         server that does not read it (Pleroma, Akkoma), the client sends the token\n\
         where that server does; the other two rows are explicit choices.\n\n",
    );
    text.push_str("| feature |");
    for (_, name) in SERVERS {
        text.push_str(&format!(" {name} |"));
    }
    text.push_str("\n|---|");
    for _ in SERVERS {
        text.push_str("---|");
    }
    text.push('\n');
    for (feature, cells) in rows {
        text.push_str(&format!("| {feature} |"));
        for cell in cells {
            text.push_str(&format!(" {} |", cell.replace('|', "\\|")));
        }
        text.push('\n');
    }
    text.push_str("\n## The source each flavour follows\n\n");
    for (flavour, name) in SERVERS {
        text.push_str(&format!("- {name}: {}\n", flavour.source()));
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_compatibility_matrix_is_what_the_servers_do() {
    let mut rows = Vec::new();
    for (feature, check) in checks() {
        let mut cells = Vec::new();
        for (flavour, _) in SERVERS {
            cells.push(check(flavour).await);
        }
        rows.push((feature, cells));
    }
    let text = render(&rows);
    let lost: Vec<String> = rows
        .iter()
        .flat_map(|(feature, cells)| {
            cells
                .iter()
                .zip(SERVERS)
                .filter(|(cell, _)| cell.starts_with(LOST))
                .map(move |(cell, (_, server))| format!("{feature} on {server}: {cell}"))
        })
        .collect();
    let path = format!("{}/../../docs/COMPATIBILITY.md", env!("CARGO_MANIFEST_DIR"));
    if std::env::var_os("MASTOSTREAM_BLESS").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    assert!(lost.is_empty(), "events lost in silence: {lost:#?}\n{text}");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == text,
        "docs/COMPATIBILITY.md no longer says what the checks find; \
         MASTOSTREAM_BLESS=1 cargo test -p mastostream --test compatibility \
         writes it anew. Found:\n{text}"
    );
}
