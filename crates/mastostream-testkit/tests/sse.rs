//! SSE streaming over real loopback sockets, read with a plain HTTP client.

mod common;

use std::time::Duration;

use common::*;
use mastostream_proto::{Channel, EventDecoder, StreamItem};
use mastostream_testkit::{Fault, Publish, TestServer};
use serde_json::json;

const SECOND: Duration = Duration::from_secs(1);

async fn server() -> TestServer {
    TestServer::builder().start().await.unwrap()
}

/// Decodes an SSE body with our decoder, into `{"event","payload"}` values.
fn events_of(body: &[u8]) -> Vec<serde_json::Value> {
    let mut decoder = EventDecoder::new();
    decoder.feed(body);
    std::iter::from_fn(|| decoder.poll())
        .filter_map(|item| match item.unwrap() {
            StreamItem::Event(e) => {
                Some(json!({"event": e.name(), "payload": e.payload().to_json_value()}))
            }
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn health_is_plain_ok_without_auth() {
    let server = server().await;
    let response = get(server.addr(), "/api/v1/streaming/health", &[]).await;
    assert_eq!(response.head.status, 200);
    assert_eq!(response.body, b"OK");
    assert!(
        response
            .head
            .header("content-type")
            .unwrap()
            .starts_with("text/plain")
    );
}

#[tokio::test]
async fn user_stream_bytes_match_the_mastodon_capture() {
    let server = server().await;
    let mut conn = Conn::get(server.addr(), "/api/v1/streaming/user", &[AUTH]).await;
    assert_eq!(conn.head.status, 200);
    assert_eq!(conn.head.header("content-type"), Some("text/event-stream"));
    assert_eq!(conn.head.header("cache-control"), Some("private, no-store"));
    assert_eq!(conn.head.header("transfer-encoding"), Some("chunked"));
    assert!(conn.read_until_contains(b":)\n", SECOND).await);
    let expected = expected("mastodon-4.6.5/sse-user.expected.jsonl");
    for event in &expected {
        // Recorded bytes: nothing stamped on them.
        let publish = Publish::new(event["event"].as_str().unwrap(), event["payload"].clone())
            .to(Channel::User)
            .verbatim();
        server.publish(publish);
    }
    assert!(
        conn.read_until_contains(
            b"event: some.future_event\ndata: {\"hello\":\"world\"}\n\n",
            SECOND
        )
        .await
    );
    let capture = std::fs::read(format!("{FIXTURES}/mastodon-4.6.5/sse-user.txt")).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&conn.body),
        String::from_utf8_lossy(&capture),
        "the body differs from Mastodon's bytes"
    );
    assert_eq!(events_of(&conn.body), expected);
}

#[tokio::test]
async fn heartbeats_at_the_configured_interval() {
    let server = TestServer::builder()
        .heartbeat(Duration::from_millis(20))
        .start()
        .await
        .unwrap();
    let mut conn = Conn::get(server.addr(), "/api/v1/streaming/public", &[AUTH]).await;
    assert!(
        conn.read_until_contains(b":)\n:thump\n\n:thump\n\n", SECOND)
            .await
    );
}

#[tokio::test]
async fn every_stream_path_gets_its_events_only() {
    let server = server().await;
    let mut conns = Vec::new();
    for name in mastostream_proto::CHANNEL_NAMES {
        let stream = Channel::from_name(name, Some("Rust")).unwrap();
        let conn = Conn::get(server.addr(), &stream.sse_path_and_query(), &[AUTH]).await;
        assert_eq!(conn.head.status, 200, "{name}");
        conns.push((stream, conn));
    }
    for (stream, _) in &conns {
        // The id says which stream it was published to.
        let delivered =
            server.publish(Publish::new("delete", stream.to_string()).to(stream.clone()));
        assert_eq!(delivered, 1, "{stream}");
    }
    for (stream, conn) in &mut conns {
        let data = format!("data: {stream}\n\n");
        assert!(
            conn.read_until_contains(data.as_bytes(), SECOND).await,
            "{stream}"
        );
        assert_eq!(
            events_of(&conn.body).len(),
            1,
            "{stream} got another stream's event"
        );
    }
}

#[tokio::test]
async fn fanout_of_an_update_as_mastodon_does() {
    let server = server().await;
    let mut status: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{FIXTURES}/entities/status_unicode.json")).unwrap(),
    )
    .unwrap();
    status["account"]["acct"] = "alice".into();
    status["media_attachments"] = json!([{"id": "1", "type": "image", "url": "https://x/1.png"}]);
    status["tags"] = json!([{"name": "RustLang", "url": "https://x/tags/rustlang"}]);
    let paths = [
        ("public", true),
        ("public?only_media=true", true),
        ("public/local", true),
        ("public/local?only_media=1", true),
        ("public/remote", false),
        ("public/remote?only_media=true", false),
        ("hashtag?tag=rustlang", true),
        ("hashtag/local?tag=RUSTLANG", true),
        ("hashtag?tag=other", false),
        ("user", false),
    ];
    let mut conns = Vec::new();
    for (path, _) in paths {
        conns.push(Conn::get(server.addr(), &format!("/api/v1/streaming/{path}"), &[AUTH]).await);
    }
    assert_eq!(server.publish(Publish::new("update", status)), 6);
    for ((path, wanted), conn) in paths.iter().zip(&mut conns) {
        let got = conn
            .read_until_contains(b"event: update\n", Duration::from_millis(300))
            .await;
        assert_eq!(got, *wanted, "{path}");
    }
}

#[tokio::test]
async fn errors_as_mastodon_answers_them() {
    let server = TestServer::builder().token("good").start().await.unwrap();
    let addr = server.addr();
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], u16, &'a str);
    let cases: [Case; 8] = [
        ("/api/v1/streaming/user", &[], 401, "Missing access token"),
        (
            "/api/v1/streaming/user",
            &[("Authorization", "Bearer bad")],
            401,
            "Invalid access token",
        ),
        (
            "/api/v1/streaming/nope",
            &[],
            400,
            "Unknown channel requested",
        ),
        (
            "/api/v1/streaming/hashtag",
            &[("Authorization", "Bearer good")],
            400,
            "Missing tag name parameter",
        ),
        (
            "/api/v1/streaming/hashtag?tag=",
            &[("Authorization", "Bearer good")],
            400,
            "Missing tag name parameter",
        ),
        (
            "/api/v1/streaming/list",
            &[("Authorization", "Bearer good")],
            400,
            "Missing list name parameter",
        ),
        (
            "/api/v1/streaming/hashtag",
            &[],
            401,
            "Missing access token",
        ),
        (
            "/api/v1/streaming/user/",
            &[("Authorization", "Bearer good")],
            400,
            "Unknown channel requested",
        ),
    ];
    for (path, headers, status, message) in cases {
        let response = get(addr, path, headers).await;
        assert_eq!(response.head.status, status, "{path}");
        assert_eq!(response.json(), json!({"error": message}), "{path}");
        assert!(
            response
                .head
                .header("content-type")
                .unwrap()
                .starts_with("application/json")
        );
    }
}

#[tokio::test]
async fn token_in_query_or_protocol_header_and_header_wins() {
    let server = TestServer::builder().token("good").start().await.unwrap();
    let addr = server.addr();
    let ok = Conn::get(addr, "/api/v1/streaming/user?access_token=good", &[]).await;
    assert_eq!(ok.head.status, 200);
    let ok = Conn::get(
        addr,
        "/api/v1/streaming/user",
        &[("Sec-WebSocket-Protocol", "good")],
    )
    .await;
    assert_eq!(ok.head.status, 200);
    let refused = get(
        addr,
        "/api/v1/streaming/user?access_token=good",
        &[("Authorization", "Bearer bad")],
    )
    .await;
    assert_eq!(refused.head.status, 401);
}

#[tokio::test]
async fn disconnect_fault_cuts_without_the_final_chunk() {
    let server = server().await;
    let mut conn = Conn::get(server.addr(), "/api/v1/streaming/public", &[AUTH]).await;
    assert!(conn.read_until_contains(b":)\n", SECOND).await);
    assert!(server.wait_for_connections(1, SECOND).await);
    assert_eq!(server.fault(Fault::Disconnect).unwrap(), 1);
    assert!(conn.read_to_close(SECOND).await, "still open");
    assert!(!conn.finished, "a restart sends no final chunk");
    // New connections work as before.
    let mut again = Conn::get(server.addr(), "/api/v1/streaming/public", &[AUTH]).await;
    assert!(again.read_until_contains(b":)\n", SECOND).await);
}

#[tokio::test]
async fn stall_fault_silences_heartbeats_and_events_then_resumes() {
    let server = TestServer::builder()
        .heartbeat(Duration::from_millis(20))
        .start()
        .await
        .unwrap();
    let mut conn = Conn::get(server.addr(), "/api/v1/streaming/public", &[AUTH]).await;
    assert!(conn.read_until_contains(b":thump\n\n", SECOND).await);
    server.fault(Fault::Stall { seconds: 0.4 }).unwrap();
    // Whatever was in flight when the stall began may still arrive.
    conn.read_some(Duration::from_millis(30)).await;
    conn.body.clear();
    server.publish(Publish::new("delete", "7").to(Channel::Public));
    assert!(
        !conn.read_some(Duration::from_millis(250)).await,
        "bytes during a stall"
    );
    assert!(conn.body.is_empty());
    assert!(
        conn.read_until_contains(b"data: 7\n\n", SECOND).await,
        "the stall never ended"
    );
}

#[tokio::test]
async fn reject_fault_answers_the_next_requests_then_recovers() {
    let server = server().await;
    let addr = server.addr();
    server
        .fault(Fault::Reject {
            status: 503,
            count: 2,
            retry_after: Some(7),
            headers: Vec::new(),
        })
        .unwrap();
    for _ in 0..2 {
        let response = get(addr, "/api/v1/streaming/public", &[AUTH]).await;
        assert_eq!(response.head.status, 503);
        assert_eq!(response.head.header("retry-after"), Some("7"));
    }
    assert_eq!(
        Conn::get(addr, "/api/v1/streaming/public", &[AUTH])
            .await
            .head
            .status,
        200
    );
    // Also through the control endpoint, with a 429.
    let ok = post_json(
        addr,
        "/api/testkit/faults",
        &json!({"kind": "reject", "status": 429}),
    )
    .await;
    assert_eq!(ok.head.status, 200);
    assert_eq!(
        get(addr, "/api/v1/streaming/public", &[AUTH])
            .await
            .head
            .status,
        429
    );
}

#[tokio::test]
async fn raw_fault_writes_bytes_as_they_are() {
    let server = server().await;
    let mut conn = Conn::get(server.addr(), "/api/v1/streaming/public", &[AUTH]).await;
    assert!(server.wait_for_connections(1, SECOND).await);
    let response = post_json(
        server.addr(),
        "/api/testkit/faults",
        &json!({"kind": "raw", "bytes": "event: update\ndata: {not json\n\n"}),
    )
    .await;
    assert_eq!(response.json()["affected"], 1);
    assert!(
        conn.read_until_contains(b"event: update\ndata: {not json\n\n", SECOND)
            .await
    );
}

#[tokio::test]
async fn control_publish_and_connections() {
    let server = server().await;
    let addr = server.addr();
    let mut conn = Conn::get(addr, "/api/v1/streaming/hashtag?tag=Rust", &[AUTH]).await;
    assert!(server.wait_for_connections(1, SECOND).await);
    let listed = get(addr, "/api/testkit/connections", &[]).await.json();
    assert_eq!(listed[0]["transport"], "sse");
    assert_eq!(listed[0]["streams"], json!([["hashtag", "Rust"]]));
    let body = json!({"stream": ["hashtag", "rust"], "event": "delete", "payload": "99"});
    let response = post_json(addr, "/api/testkit/publish", &body).await;
    assert_eq!(response.json(), json!({"delivered": 1}));
    assert!(
        conn.read_until_contains(b"event: delete\ndata: 99\n\n", SECOND)
            .await
    );
    let bad = post_json(
        addr,
        "/api/testkit/publish",
        &json!({"stream": "nope", "event": "x"}),
    )
    .await;
    assert_eq!(bad.head.status, 422);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_connections_each_get_every_event_of_a_10k_replay() {
    raise_fd_limit();
    let events: Vec<Publish> = (1..=10_000)
        .map(|id| Publish::new("delete", id.to_string()).to(Channel::Public))
        .collect();
    let server = TestServer::builder()
        .replay(events, 0.0)
        .start()
        .await
        .unwrap();
    let addr = server.addr();
    let mut tasks = Vec::new();
    for _ in 0..1000 {
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::get(addr, "/api/v1/streaming/public", &[AUTH]).await;
            let mut decoder = EventDecoder::new();
            let mut next = 1u32;
            while next <= 10_000 {
                assert!(
                    conn.read_some(Duration::from_secs(30)).await,
                    "stalled at {next}"
                );
                decoder.feed(&std::mem::take(&mut conn.body));
                while let Some(item) = decoder.poll() {
                    if let StreamItem::Event(event) = item.unwrap() {
                        if next <= 10_000 {
                            assert_eq!(event.payload().as_str(), Some(next.to_string().as_str()));
                        }
                        next += 1;
                    }
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

/// Mastodon 4.1's bytes (mastodon/mastodon streaming/index.js at v4.1.0):
/// public streams without a token, `Cache-Control: no-store`, `:)` and
/// bare `:thump` lines with no blank line after them; a stream that is not
/// public refused anonymously, and an unknown one 404 after the token.
#[tokio::test]
async fn mastodon_4_1_serves_public_streams_anonymously_with_bare_heartbeats() {
    let server = TestServer::builder()
        .flavour(mastostream_testkit::Flavour::Mastodon41)
        .heartbeat(Duration::from_millis(30))
        .start()
        .await
        .unwrap();
    let mut conn = Conn::get(server.addr(), "/api/v1/streaming/public", &[]).await;
    assert_eq!(conn.head.status, 200);
    assert_eq!(conn.head.header("cache-control"), Some("no-store"));
    assert!(
        conn.read_until_contains(b":)\n:thump\n:thump\n", SECOND)
            .await
    );
    let user = get(server.addr(), "/api/v1/streaming/user", &[]).await;
    assert_eq!(user.head.status, 401);
    assert_eq!(
        user.json(),
        json!({"error": "Error: Access token does not cover required scopes"})
    );
    let unknown = get(server.addr(), "/api/v1/streaming/nothing", &[AUTH]).await;
    assert_eq!(unknown.head.status, 404);
    assert_eq!(unknown.json(), json!({"error": "Not found"}));
}
