//! The multiplexed WebSocket against the test server's emulations of other
//! servers (see `mastostream-testkit`'s flavour.rs for the sources each
//! follows): their labels and answers reach the right subscription, and
//! nothing of theirs is lost or shown as an event.

use std::time::Duration;

use mastostream::{Client, Error, EventStream, Item, ReconnectPolicy, Software, Transport};
use mastostream_proto::Channel;
use mastostream_testkit::{Flavour, Publish, TestServer};

mod common;
use common::next_significant;

const SECOND: Duration = Duration::from_secs(1);

async fn server(flavour: Flavour) -> TestServer {
    common::flavoured_server(flavour).await
}

fn client(server: &TestServer) -> Client {
    Client::builder(server.url())
        .token("token")
        .transport(Transport::WebSocket)
        .reconnect(ReconnectPolicy::Fixed(Duration::from_millis(20)))
        .build()
        .unwrap()
}

/// The next event's name and payload text; panics on an end or a skip.
async fn next_event(events: &mut EventStream) -> (String, String) {
    loop {
        match next_significant(events, 2 * SECOND).await {
            Ok(Item::Event(event)) => {
                let payload = event.payload().as_str().unwrap_or_default().to_owned();
                return (event.name().to_owned(), payload);
            }
            Ok(Item::Heartbeat) => {}
            other => panic!("{}: expected an event, got {other:?}", events.channel()),
        }
    }
}

/// Waits until the server holds `count` subscriptions on one WebSocket.
async fn subscribed(server: &TestServer, count: usize) {
    let held = server
        .wait_until(2 * SECOND, |open| {
            open.len() == 1 && open[0].streams.len() == count
        })
        .await;
    assert!(held, "{:?}", server.connections());
}

/// Asserts nothing more arrives on `events` for a moment (a heartbeat aside).
async fn nothing_more(events: &mut EventStream) {
    use futures_util::StreamExt;
    let more = tokio::time::timeout(Duration::from_millis(150), async {
        loop {
            match events.next().await {
                Some(Ok(Item::Heartbeat)) => {}
                other => return other,
            }
        }
    })
    .await;
    assert!(more.is_err(), "{}: got {more:?}", events.channel());
}

/// Akkoma labels with its internal topics: `["user:<id>"]` for the home
/// timeline, `["user"]` for its notifications, `["public:local"]`, and
/// deletes with no label. Before labels were read as every server writes
/// them, each of these events was dropped as "a stream this client does
/// not know" (the delete as a malformed frame).
#[tokio::test]
async fn akkoma_topic_labels_reach_their_subscriptions() {
    let server = server(Flavour::Akkoma).await;
    let client = client(&server);
    let mut home = client.stream(Channel::User);
    let mut local = client.stream(Channel::PublicLocal);
    let mut direct = client.stream(Channel::Direct);
    subscribed(&server, 3).await;

    server.publish(Publish::new("delete", "home").to(Channel::User));
    server.publish(Publish::new("notifications_merged", "n").to(Channel::User));
    server.publish(Publish::new("announcement.delete", "c").to(Channel::Direct));
    server.publish(Publish::new("announcement.delete", "l").to(Channel::PublicLocal));
    // Akkoma's own event names pass through as unknown events, routed alike.
    server.publish(Publish::new("pleroma:follow_relationships_update", "f").to(Channel::User));

    // The unlabelled delete goes to every subscription of the connection.
    for events in [&mut home, &mut local, &mut direct] {
        assert_eq!(next_event(events).await, ("delete".into(), "home".into()));
    }
    assert_eq!(
        next_event(&mut home).await,
        ("notifications_merged".into(), "n".into())
    );
    assert_eq!(
        next_event(&mut home).await,
        ("pleroma:follow_relationships_update".into(), "f".into())
    );
    assert_eq!(
        next_event(&mut direct).await,
        ("announcement.delete".into(), "c".into())
    );
    assert_eq!(
        next_event(&mut local).await,
        ("announcement.delete".into(), "l".into())
    );
    for events in [&mut home, &mut local, &mut direct] {
        nothing_more(events).await;
    }
}

/// Pleroma labels as Mastodon does but acknowledges every command with a
/// `pleroma:respond` event that names no stream: those are answers, not
/// events, and a refusal (`bad_topic`) ends only the subscription it can be
/// about, the others going on.
#[tokio::test]
async fn pleroma_answers_are_not_events_and_a_refusal_ends_only_its_stream() {
    let server = server(Flavour::Pleroma).await;
    let client = client(&server);
    let mut rust = client.stream(Channel::Hashtag("rust".into()));
    let mut list = client.stream(Channel::List("42".into()));
    subscribed(&server, 2).await;
    // A name Pleroma does not have: the client knows, and says so.
    let mut bogus = client.stream(Channel::other("public:bogus", [("x", "y")]));
    match next_significant(&mut bogus, 2 * SECOND).await {
        Err(Error::Unsupported { server, .. }) => assert!(server.starts_with("Pleroma")),
        other => panic!("the lacking stream: {other:?}"),
    }
    server.publish(Publish::new("delete", "1").to(Channel::Hashtag("Rust".into())));
    server.publish(Publish::new("announcement.delete", "2").to(Channel::List("42".into())));
    // The first thing each subscription sees is its own event: no answer
    // frame came through as an event.
    assert_eq!(next_event(&mut rust).await, ("delete".into(), "1".into()));
    // The unlabelled delete went to the list's subscription too.
    assert_eq!(next_event(&mut list).await, ("delete".into(), "1".into()));
    assert_eq!(
        next_event(&mut list).await,
        ("announcement.delete".into(), "2".into())
    );
    nothing_more(&mut rust).await;
    nothing_more(&mut list).await;
}

/// Pleroma's chat stream: `user:pleroma_chat`, subscribed to through the
/// stream escape hatch, gets `pleroma:chat_update` labelled with its own
/// name, and the user's stream gets the same update (side_effects.ex sends
/// it to both). The connection is logged in although Pleroma reads no
/// `Authorization` header: the client, told by discovery, puts the token
/// where Pleroma reads it (the query).
#[tokio::test]
async fn pleroma_chat_updates_reach_the_chat_and_the_user_stream() {
    let pleroma = server(Flavour::Pleroma).await;
    let client = client(&pleroma);
    let mut chat = client.stream(Channel::other("user:pleroma_chat", [] as [(&str, &str); 0]));
    let mut home = client.stream(Channel::User);
    subscribed(&pleroma, 2).await;
    let update =
        serde_json::json!({"id": "9", "unread": 1, "updated_at": "2026-12-02T10:00:00.000Z"});
    pleroma.publish(Publish::new("pleroma:chat_update", update.clone()));
    for events in [&mut chat, &mut home] {
        let (name, payload) = next_event(events).await;
        assert_eq!(name, "pleroma:chat_update");
        let payload: serde_json::Value = serde_json::from_str(&payload).unwrap();
        assert_eq!(payload, update);
    }
    nothing_more(&mut chat).await;
    // Akkoma has no chats: the client says so rather than wait on nothing.
    let akkoma = server(Flavour::Akkoma).await;
    let client = self::client(&akkoma);
    let mut chat = client.stream(Channel::other("user:pleroma_chat", [] as [(&str, &str); 0]));
    match next_significant(&mut chat, 2 * SECOND).await {
        Err(Error::Unsupported { server, .. }) => assert!(server.starts_with("Akkoma"), "{server}"),
        other => panic!("Akkoma's chat stream: {other:?}"),
    }
}

/// Iceshrimp.NET refuses a subscribe by closing the connection (1007 for a
/// list the user does not own). The one pending subscribe that close can be
/// about ends with an error that says so, and the others come back without
/// it, instead of re-sending it and being closed again, over and over.
#[tokio::test]
async fn iceshrimp_closing_on_a_foreign_list_ends_only_the_list() {
    let server = server(Flavour::Iceshrimp).await;
    server
        .fault(mastostream_testkit::Fault::RefuseList { list: "42".into() })
        .unwrap();
    let client = client(&server);
    let mut public = client.stream(Channel::Public);
    let mut list = client.stream(Channel::List("42".into()));
    match next_significant(&mut list, 2 * SECOND).await {
        Err(Error::Http {
            status: 400,
            message: Some(message),
            ..
        }) => assert!(message.contains("code 1007"), "{message}"),
        other => panic!("the foreign list: {other:?}"),
    }
    // Back on a new connection, with the public stream alone.
    let settled = server
        .wait_until(2 * SECOND, |open| {
            open.len() == 1 && open[0].streams == [vec!["public".to_owned()]]
        })
        .await;
    assert!(settled, "{:?}", server.connections());
    server.publish(Publish::new("delete", "7").to(Channel::Public));
    loop {
        match next_significant(&mut public, 2 * SECOND).await {
            Ok(Item::Event(event)) => {
                assert_eq!(event.payload().as_str(), Some("7"));
                break;
            }
            // The close was a break for the public stream: it reconnected.
            Ok(Item::Reconnecting { .. } | Item::Heartbeat) => {}
            other => panic!("the public stream: {other:?}"),
        }
    }
}

/// Iceshrimp.NET sends a delete on a list stream as `status.update` with
/// the id as payload; it arrives as the delete it is, not as a skipped
/// malformed update (before, it was `Item::Skipped`: "payload is not a
/// JSON object").
#[tokio::test]
async fn iceshrimp_list_deletes_arrive_as_deletes() {
    let server = server(Flavour::Iceshrimp).await;
    let client = client(&server);
    let mut list = client.stream(Channel::List("42".into()));
    subscribed(&server, 1).await;
    server.publish(Publish::new("delete", "9zXq2AbCdEf").to(Channel::List("42".into())));
    assert_eq!(
        next_event(&mut list).await,
        ("delete".into(), "9zXq2AbCdEf".into())
    );
}

/// GoToSocial serves no SSE, labels every WebSocket event with the
/// connection's first stream, and ignores in-band subscribes to
/// `user:notification` and hashtags. With the default transport each
/// stream falls back to a WebSocket of its own, named in its URL, so each
/// gets its own events. On one shared WebSocket (before), the list's and
/// the local timeline's events were labelled `["user:notification"]` and
/// delivered to the notification stream, and with the list first, the
/// notification stream got nothing at all.
#[tokio::test]
async fn gotosocial_streams_each_get_their_own_events() {
    let server = server(Flavour::GoToSocial).await;
    let client = Client::builder(server.url())
        .token("token")
        .reconnect(ReconnectPolicy::Fixed(Duration::from_millis(20)))
        .build()
        .unwrap();
    let list = Channel::List("01HZZ".into());
    let mut notifications = client.stream(Channel::UserNotification);
    let mut on_list = client.stream(list.clone());
    let mut local = client.stream(Channel::PublicLocal);
    let held = server
        .wait_until(5 * SECOND, |open| {
            open.len() == 3 && open.iter().all(|c| c.streams.len() == 1)
        })
        .await;
    assert!(held, "{:?}", server.connections());
    server.publish(Publish::new("notifications_merged", "n").to(Channel::UserNotification));
    server.publish(Publish::new("delete", "l").to(list));
    server.publish(Publish::new("announcement.delete", "p").to(Channel::PublicLocal));
    assert_eq!(
        next_event(&mut notifications).await,
        ("notifications_merged".into(), "n".into())
    );
    assert_eq!(
        next_event(&mut on_list).await,
        ("delete".into(), "l".into())
    );
    assert_eq!(
        next_event(&mut local).await,
        ("announcement.delete".into(), "p".into())
    );
    for events in [&mut notifications, &mut on_list, &mut local] {
        nothing_more(events).await;
    }
}

/// Akkoma's in-band subscribe takes no tag, so a hashtag stream must be
/// named in the URL; with the default transport it is.
#[tokio::test]
async fn akkoma_hashtag_streams_by_the_url() {
    let server = server(Flavour::Akkoma).await;
    let client = Client::builder(server.url())
        .token("token")
        .reconnect(ReconnectPolicy::Fixed(Duration::from_millis(20)))
        .build()
        .unwrap();
    let mut rust = client.stream(Channel::Hashtag("rust".into()));
    subscribed(&server, 1).await;
    server.publish(Publish::new("announcement.delete", "1").to(Channel::Hashtag("Rust".into())));
    assert_eq!(
        next_event(&mut rust).await,
        ("announcement.delete".into(), "1".into())
    );
}

/// The end of a stream the server lacks: its error, within a few seconds.
async fn unsupported_end(events: &mut EventStream) -> Error {
    loop {
        match next_significant(events, 5 * SECOND).await {
            Ok(Item::Heartbeat) => {}
            Err(error) => return error,
            other => panic!("{}: expected the end, got {other:?}", events.channel()),
        }
    }
}

/// A stream the server lacks ends at once with an error naming the server
/// and the stream, on either transport, where the server itself would
/// have said nothing: GoToSocial opens a hashtag stream and never pushes
/// to it, Akkoma drops a subscribe to `hashtag:local` with a log line;
/// Pleroma refuses `public:remote` (its own takes an instance). The other
/// streams of the same client go on; Mastodon and Iceshrimp.NET stream
/// them all.
#[tokio::test]
async fn streams_a_server_lacks_end_with_a_clear_error() {
    let tag = || Channel::Hashtag("rust".into());
    let cases = [
        (Flavour::GoToSocial, tag(), "GoToSocial", "hashtag=rust"),
        (
            Flavour::GoToSocial,
            Channel::PublicMedia,
            "GoToSocial",
            "public:media",
        ),
        (
            Flavour::Akkoma,
            Channel::HashtagLocal("rust".into()),
            "Akkoma",
            "hashtag:local=rust",
        ),
        (
            Flavour::Pleroma,
            Channel::PublicRemote,
            "Pleroma",
            "public:remote",
        ),
    ];
    for (flavour, lacking, name, stream) in cases {
        for transport in [Transport::Auto, Transport::WebSocket] {
            let server = server(flavour).await;
            let client = Client::builder(server.url())
                .token("token")
                .transport(transport)
                .reconnect(ReconnectPolicy::Fixed(Duration::from_millis(20)))
                .build()
                .unwrap();
            let mut public = client.stream(Channel::Public);
            let mut missing = client.stream(lacking.clone());
            let error = unsupported_end(&mut missing).await;
            let Error::Unsupported {
                server: said,
                stream: named,
                ..
            } = &error
            else {
                panic!("{flavour:?} {transport:?}: {error:?}");
            };
            assert!(said.starts_with(name), "{error}");
            assert!(said.contains("127.0.0.1"), "{error}");
            assert_eq!(named, stream, "{error}");
            let text = error.to_string();
            assert!(text.contains(name) && text.contains(stream), "{text}");
            assert!(!error.is_retryable());
            // The rest of the client streams on.
            assert!(server.wait_for_subscriptions(1, 2 * SECOND).await);
            server.publish(Publish::new("announcement.delete", "on").to(Channel::Public));
            assert_eq!(
                next_event(&mut public).await,
                ("announcement.delete".into(), "on".into()),
                "{flavour:?} {transport:?}"
            );
        }
    }
    for flavour in [Flavour::Mastodon, Flavour::Iceshrimp] {
        let server = server(flavour).await;
        let client = client(&server);
        let mut rust = client.stream(tag());
        subscribed(&server, 1).await;
        server.publish(Publish::new("announcement.delete", "1").to(tag()));
        assert_eq!(
            next_event(&mut rust).await,
            ("announcement.delete".into(), "1".into()),
            "{flavour:?}"
        );
    }
}

/// Akkoma does not handle unsubscribe: after one, its events keep coming
/// on the shared connection, and the client drops them instead of handing
/// them to the subscription that is left.
#[tokio::test]
async fn akkoma_events_of_a_stream_given_up_are_dropped() {
    let server = server(Flavour::Akkoma).await;
    let client = client(&server);
    let mut public = client.stream(Channel::Public);
    let local = client.stream(Channel::PublicLocal);
    subscribed(&server, 2).await;
    drop(local);
    // The client sent its unsubscribe; Akkoma ignored it, so the server
    // still holds both. Its events for the stream given up are dropped.
    server.publish(Publish::new("announcement.delete", "gone").to(Channel::PublicLocal));
    server.publish(Publish::new("announcement.delete", "kept").to(Channel::Public));
    assert_eq!(
        next_event(&mut public).await,
        ("announcement.delete".into(), "kept".into())
    );
    nothing_more(&mut public).await;
}

/// A status for glitch-soc's fan-out: local, and local-only or not.
fn glitch_status(id: &str, local_only: bool) -> serde_json::Value {
    let mut status: serde_json::Value =
        serde_json::from_str(include_str!("../../../fixtures/entities/status.json")).unwrap();
    status["id"] = id.into();
    status["account"]["acct"] = "alice".into();
    status["local_only"] = local_only.into();
    status
}

/// The next update's status id.
async fn next_update_id(events: &mut EventStream) -> String {
    let (name, payload) = next_event(events).await;
    assert_eq!(name, "update", "{payload}");
    let status: serde_json::Value = serde_json::from_str(&payload).unwrap();
    status["id"].as_str().unwrap().to_owned()
}

/// glitch-soc: a local-only post reaches `public:local` and
/// `public:allow_local_only` (a stream this version does not name,
/// subscribed through `Channel::Other`), not `public`, although the server
/// would take `public` and `public:allow_local_only` on one WebSocket as
/// one subscription; over SSE the same stream is
/// `public?allow_local_only=true`.
#[tokio::test]
async fn glitch_soc_local_only_posts_reach_the_streams_that_allow_them() {
    let server = server(Flavour::GlitchSoc).await;
    let allow = Channel::Other {
        name: "public:allow_local_only".into(),
        params: Vec::new(),
    };
    let client = client(&server);
    let mut public = client.stream(Channel::Public);
    let mut local = client.stream(Channel::PublicLocal);
    let mut allowing = client.stream(allow);
    // glitch-soc takes `public` and `public:allow_local_only` on one
    // WebSocket as one subscription (one Redis channel) and ignores the
    // second: that one gets a WebSocket of its own.
    let held = server
        .wait_until(2 * SECOND, |open| {
            open.len() == 2 && open.iter().map(|c| c.streams.len()).sum::<usize>() == 3
        })
        .await;
    assert!(held, "{:?}", server.connections());
    server.publish(Publish::new("update", glitch_status("100", true)));
    server.publish(Publish::new("update", glitch_status("101", false)));
    assert_eq!(next_update_id(&mut public).await, "101");
    assert_eq!(next_update_id(&mut local).await, "100");
    assert_eq!(next_update_id(&mut local).await, "101");
    assert_eq!(next_update_id(&mut allowing).await, "100");
    assert_eq!(next_update_id(&mut allowing).await, "101");
    nothing_more(&mut public).await;
    drop((public, local, allowing));

    let sse = Client::builder(server.url())
        .token("token")
        .transport(Transport::Sse)
        .build()
        .unwrap();
    let mut allowing = sse.stream(Channel::Other {
        name: "public".into(),
        params: vec![("allow_local_only".into(), "true".into())],
    });
    let mut plain = sse.stream(Channel::Public);
    assert!(
        server
            .wait_until(2 * SECOND, |open| open.len() == 2
                && open
                    .iter()
                    .all(|c| c.transport == mastostream_testkit::Transport::Sse))
            .await,
        "{:?}",
        server.connections()
    );
    server.publish(Publish::new("update", glitch_status("102", true)));
    server.publish(Publish::new("update", glitch_status("103", false)));
    assert_eq!(next_update_id(&mut allowing).await, "102");
    assert_eq!(next_update_id(&mut allowing).await, "103");
    assert_eq!(next_update_id(&mut plain).await, "103");
}

/// Mastodon 4.1: public streams without a token (no `filtered` then), with
/// one `"filtered":[]` on updates; bare `:thump` heartbeats; `filters_changed`
/// with no payload; the user stream refused to an anonymous client and an
/// unknown stream answered 404, each a final error in 4.1's words.
#[tokio::test]
async fn mastodon_4_1_public_streams_without_a_token_and_its_old_bytes() {
    let server = TestServer::builder()
        .flavour(Flavour::Mastodon41)
        .heartbeat(Duration::from_millis(50))
        .start()
        .await
        .unwrap();
    for transport in [Transport::Sse, Transport::WebSocket] {
        for token in [None, Some("token")] {
            let mut builder = Client::builder(server.url())
                .transport(transport)
                .reconnect(ReconnectPolicy::Off);
            if let Some(token) = token {
                builder = builder.token(token);
            }
            let client = builder.build().unwrap();
            let mut events = client.stream(Channel::Public).with_heartbeats(true);
            assert!(
                server.wait_for_subscriptions(1, 2 * SECOND).await,
                "{transport:?} {token:?}"
            );
            server.publish(Publish::new("update", glitch_status("200", false)));
            let (name, payload) = next_event(&mut events).await;
            assert_eq!(name, "update");
            let status: serde_json::Value = serde_json::from_str(&payload).unwrap();
            let expected = token.map(|_| serde_json::json!([]));
            assert_eq!(
                status.get("filtered"),
                expected.as_ref(),
                "{transport:?} {token:?}"
            );
            if transport == Transport::Sse {
                // `:thump\n` with no blank line is still a heartbeat.
                let next = next_significant(&mut events, 2 * SECOND).await;
                assert!(matches!(next, Ok(Item::Heartbeat)), "{next:?}");
            }
            drop(events);
            assert!(server.wait_until(2 * SECOND, |open| open.is_empty()).await);
        }
    }

    // filters_changed, as 4.1 sent it: `data: undefined` (no payload).
    let client = Client::builder(server.url())
        .token("token")
        .transport(Transport::Sse)
        .build()
        .unwrap();
    let mut user = client.stream(Channel::User);
    assert!(server.wait_for_subscriptions(1, 2 * SECOND).await);
    server.publish(Publish::new("filters_changed", serde_json::Value::Null));
    match next_significant(&mut user, 2 * SECOND).await {
        Ok(Item::Event(event)) => {
            assert_eq!(event.name(), "filters_changed");
            assert_eq!(event.payload().as_str(), None);
        }
        other => panic!("{other:?}"),
    }
    drop(user);

    let anonymous = Client::builder(server.url())
        .transport(Transport::Sse)
        .build()
        .unwrap();
    let mut refused = anonymous.stream(Channel::User);
    match next_significant(&mut refused, 2 * SECOND).await {
        Err(Error::Http {
            status: 401,
            message: Some(message),
            ..
        }) => assert_eq!(
            message,
            "Error: Access token does not cover required scopes"
        ),
        other => panic!("{other:?}"),
    }
    let mut unknown = client.stream(Channel::Other {
        name: "public:allow_local_only".into(),
        params: Vec::new(),
    });
    match next_significant(&mut unknown, 2 * SECOND).await {
        Err(Error::Http { status: 404, .. }) => {}
        other => panic!("{other:?}"),
    }
}

/// Pleroma and Akkoma never read the WebSocket's token from an
/// `Authorization` header (the default): Pleroma 2.7 reads `?access_token=`
/// only, Akkoma that or `Sec-WebSocket-Protocol`. Once discovery has named
/// the server, the client puts it there, and the user stream opens. Given
/// the streaming URL (no discovery, so no name), the header is sent, the
/// connection is anonymous, and Pleroma refuses the user stream in band
/// (Akkoma only logs a refused subscribe: with no name to go by, the
/// client cannot tell that from a quiet stream). Named by the builder, the
/// server gets the token where it reads it again.
#[tokio::test]
async fn pleroma_and_akkoma_get_the_token_where_they_read_it() {
    for flavour in [Flavour::Pleroma, Flavour::Akkoma] {
        let server = server(flavour).await;
        let client = client(&server);
        let mut user = client.stream(Channel::User);
        subscribed(&server, 1).await;
        server.publish(Publish::new("announcement.delete", "9").to(Channel::User));
        assert_eq!(
            next_event(&mut user).await,
            ("announcement.delete".into(), "9".into()),
            "{flavour:?}"
        );
        let undiscovered = Client::builder(server.url())
            .streaming_url(server.url())
            .token("token")
            .transport(Transport::WebSocket)
            .reconnect(ReconnectPolicy::Off)
            .build()
            .unwrap();
        if flavour == Flavour::Pleroma {
            let mut refused = undiscovered.stream(Channel::User);
            let error = common::final_error(&mut refused, 2 * SECOND).await;
            assert!(error.is_auth(), "{flavour:?}: {error}");
        }
        drop((user, client, undiscovered));
        // Given the streaming URL and told the software, the token goes
        // where the server reads it, and on Akkoma a hashtag gets a
        // WebSocket of its own (its in-band subscribe takes no tag).
        let software = match flavour {
            Flavour::Pleroma => Software::Pleroma,
            _ => Software::Akkoma,
        };
        let named = Client::builder(server.url())
            .streaming_url(server.url())
            .server_software(software)
            .token("token")
            .transport(Transport::WebSocket)
            .reconnect(ReconnectPolicy::Off)
            .build()
            .unwrap();
        let mut user = named.stream(Channel::User);
        let mut rust = named.stream(Channel::Hashtag("rust".into()));
        let both_held = server
            .wait_until(2 * SECOND, |open| {
                let mut streams: Vec<String> = open
                    .iter()
                    .flat_map(|c| c.streams.iter().map(|s| s.join(":")))
                    .collect();
                streams.sort();
                streams == ["hashtag:rust", "user"]
            })
            .await;
        assert!(both_held, "{flavour:?}: {:?}", server.connections());
        server.publish(Publish::new("announcement.delete", "10").to(Channel::User));
        assert_eq!(
            next_event(&mut user).await,
            ("announcement.delete".into(), "10".into()),
            "{flavour:?}"
        );
        server
            .publish(Publish::new("announcement.delete", "11").to(Channel::Hashtag("rust".into())));
        assert_eq!(
            next_event(&mut rust).await,
            ("announcement.delete".into(), "11".into()),
            "{flavour:?}"
        );
    }
}
