//! Instance discovery and the timelines catch-up reads, over plain HTTP.

mod common;

use common::*;
use mastostream_proto::Channel;
use mastostream_testkit::{Publish, TestServer};
use serde_json::{Value, json};

fn status(id: Option<&str>, acct: &str, tags: &[&str], media: bool) -> Value {
    let mut status: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{FIXTURES}/entities/status.json")).unwrap(),
    )
    .unwrap();
    status["id"] = id.map_or(Value::Null, Value::from);
    status["account"]["acct"] = acct.into();
    status["tags"] = tags.iter().map(|t| json!({"name": t, "url": ""})).collect();
    status["media_attachments"] = if media {
        json!([{"id": "1", "type": "image"}])
    } else {
        json!([])
    };
    status
}

fn ids(response: &Response) -> Vec<String> {
    response
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn instance_endpoints_point_at_the_streaming_host() {
    let server = TestServer::builder().start().await.unwrap();
    let addr = server.addr();
    for path in ["/api/v1/instance", "/api/v1/instance/"] {
        let v1 = get(addr, path, &[]).await;
        assert_eq!(v1.head.status, 200, "{path}");
        assert_eq!(v1.json()["urls"]["streaming_api"], format!("ws://{addr}"));
    }
    let v2 = get(addr, "/api/v2/instance/", &[]).await.json();
    assert_eq!(
        v2["configuration"]["urls"]["streaming"],
        format!("ws://{addr}")
    );
    // Same host: nothing to redirect to.
    let same = get(addr, "/api/v1/streaming", &[]).await;
    assert_eq!(same.head.status, 404);
    assert_eq!(same.json(), json!({"error": "Not Found"}));

    let other = TestServer::builder()
        .streaming_url(format!("ws://{}", server.addr()))
        .start()
        .await
        .unwrap();
    let v1 = get(other.addr(), "/api/v1/instance", &[]).await.json();
    assert_eq!(v1["urls"]["streaming_api"], format!("ws://{addr}"));
    let v2 = get(other.addr(), "/api/v2/instance", &[]).await.json();
    assert_eq!(
        v2["configuration"]["urls"]["streaming"],
        format!("ws://{addr}")
    );
    let redirect = get(other.addr(), "/api/v1/streaming", &[]).await;
    assert_eq!(redirect.head.status, 301);
    assert_eq!(
        redirect.head.header("location"),
        Some(format!("http://{addr}/api/v1/streaming").as_str())
    );
    let redirect = get(other.addr(), "/api/v1/streaming?stream=user", &[]).await;
    assert_eq!(
        redirect.head.header("location"),
        Some(format!("http://{addr}/api/v1/streaming?stream=user").as_str())
    );
}

#[tokio::test]
async fn home_timeline_pages_like_mastodon() {
    let server = TestServer::builder().start().await.unwrap();
    let addr = server.addr();
    let mut published = Vec::new();
    for _ in 0..7 {
        // No id: the server gives each a rising snowflake id.
        server.publish(Publish::new("update", status(None, "alice", &[], false)).to(Channel::User));
    }
    let all = get(addr, "/api/v1/timelines/home?limit=40", &[AUTH]).await;
    published.extend(ids(&all));
    assert_eq!(published.len(), 7);
    let numbers: Vec<u64> = published.iter().map(|id| id.parse().unwrap()).collect();
    assert!(
        numbers.windows(2).all(|w| w[0] > w[1]),
        "newest first: {numbers:?}"
    );
    assert!(
        published.iter().all(|id| id.len() >= 18),
        "snowflake-sized ids"
    );

    let first = get(addr, "/api/v1/timelines/home?limit=3", &[AUTH]).await;
    assert_eq!(ids(&first), published[..3]);
    let link = first.head.header("link").unwrap().to_owned();
    assert_eq!(
        link,
        format!(
            "<http://{addr}/api/v1/timelines/home?limit=3&max_id={}>; rel=\"next\", <http://{addr}/api/v1/timelines/home?limit=3&min_id={}>; rel=\"prev\"",
            published[2], published[0]
        )
    );
    let next = get(
        addr,
        &format!("/api/v1/timelines/home?limit=3&max_id={}", published[2]),
        &[AUTH],
    )
    .await;
    assert_eq!(ids(&next), published[3..6]);
    // min_id: the page right after it, still newest first.
    let after = get(
        addr,
        &format!("/api/v1/timelines/home?limit=2&min_id={}", published[6]),
        &[AUTH],
    )
    .await;
    assert_eq!(ids(&after), published[4..6]);
    // since_id: the newest ones after it.
    let since = get(
        addr,
        &format!("/api/v1/timelines/home?limit=2&since_id={}", published[6]),
        &[AUTH],
    )
    .await;
    assert_eq!(ids(&since), published[..2]);
    // min_id wins over since_id.
    let path = format!(
        "/api/v1/timelines/home?limit=1&since_id={}&min_id={}",
        published[1], published[6]
    );
    assert_eq!(ids(&get(addr, &path, &[AUTH]).await), published[5..6]);
    // Rails reads `limit` with to_i.abs: junk is 0, negatives count.
    let junk = get(addr, "/api/v1/timelines/home?limit=abc", &[AUTH]).await;
    assert!(ids(&junk).is_empty());
    let negative = get(addr, "/api/v1/timelines/home?limit=-2", &[AUTH]).await;
    assert_eq!(ids(&negative), published[..2]);
    let empty = get(
        addr,
        &format!("/api/v1/timelines/home?min_id={}", published[0]),
        &[AUTH],
    )
    .await;
    assert_eq!(empty.json(), json!([]));
    assert!(empty.head.header("link").is_none());

    assert_eq!(
        get(addr, "/api/v1/timelines/home", &[]).await.head.status,
        401
    );
}

#[tokio::test]
async fn public_tag_and_list_timelines_filter() {
    let server = TestServer::builder().start().await.unwrap();
    let addr = server.addr();
    server.publish(Publish::new(
        "update",
        status(Some("100"), "alice", &["Rust"], false),
    ));
    server.publish(Publish::new(
        "update",
        status(Some("101"), "bob@remote.example", &["rust"], true),
    ));
    server.publish(Publish::new(
        "update",
        status(Some("102"), "carol", &[], true),
    ));
    server.publish(
        Publish::new("update", status(Some("103"), "dave", &[], false))
            .to(Channel::List("7".into())),
    );
    let mut private = status(Some("104"), "erin", &["rust"], false);
    private["visibility"] = "private".into();
    server.publish(Publish::new("update", private));

    let cases = [
        ("/api/v1/timelines/public", vec!["102", "101", "100"]),
        ("/api/v1/timelines/public?local=true", vec!["102", "100"]),
        ("/api/v1/timelines/public?remote=true", vec!["101"]),
        (
            "/api/v1/timelines/public?only_media=true",
            vec!["102", "101"],
        ),
        (
            "/api/v1/timelines/public?local=true&only_media=true",
            vec!["102"],
        ),
        ("/api/v1/timelines/tag/RUST", vec!["101", "100"]),
        ("/api/v1/timelines/tag/rust?local=true", vec!["100"]),
        ("/api/v1/timelines/list/7", vec!["103"]),
    ];
    for (path, want) in cases {
        let response = get(addr, path, &[AUTH]).await;
        assert_eq!(ids(&response), want, "{path}");
    }
    // A delete takes the status out of every timeline.
    server.publish(Publish::new("delete", "101"));
    assert_eq!(
        ids(&get(addr, "/api/v1/timelines/tag/rust", &[]).await),
        ["100"]
    );
    assert_eq!(
        get(addr, "/api/v1/timelines/list/7", &[]).await.head.status,
        401
    );
}

#[tokio::test]
async fn notifications_and_conversations() {
    let server = TestServer::builder().start().await.unwrap();
    let addr = server.addr();
    let notification: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{FIXTURES}/entities/notification.json")).unwrap(),
    )
    .unwrap();
    for id in ["10", "11", "12"] {
        let mut n = notification.clone();
        n["id"] = id.into();
        server.publish(Publish::new("notification", n).to(Channel::User));
    }
    let page = get(addr, "/api/v1/notifications?limit=2", &[AUTH]).await;
    assert_eq!(ids(&page), ["12", "11"]);
    assert!(page.head.header("link").unwrap().contains("max_id=11"));
    let after = get(addr, "/api/v1/notifications/?min_id=10", &[AUTH]).await;
    assert_eq!(ids(&after), ["12", "11"]);

    let conversation: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{FIXTURES}/entities/conversation.json")).unwrap(),
    )
    .unwrap();
    for (conversation_id, last_status) in [("a", "500"), ("b", "501"), ("a", "502")] {
        let mut c = conversation.clone();
        c["id"] = conversation_id.into();
        c["last_status"]["id"] = last_status.into();
        server.publish(Publish::new("conversation", c));
    }
    let page = get(addr, "/api/v1/conversations", &[AUTH]).await;
    assert_eq!(ids(&page), ["a", "b"]);
    assert!(page.head.header("link").unwrap().contains("max_id=501"));
    assert_eq!(
        get(addr, "/api/v1/conversations", &[]).await.head.status,
        401
    );
}

#[tokio::test]
async fn unknown_paths_are_404_json() {
    let server = TestServer::builder().start().await.unwrap();
    let response = get(server.addr(), "/api/v1/nothing", &[]).await;
    assert_eq!(response.head.status, 404);
    assert_eq!(response.json(), json!({"error": "Record not found"}));
}
