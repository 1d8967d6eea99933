//! Ids and times as a live server sends them: a replay stamped with the
//! moment each event goes out, and publishes that fill in, restamp or keep.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use mastostream_proto::{EventDecoder, StreamItem, parse_timestamp};
use mastostream_testkit::{TestServer, replay};
use serde_json::{Value, json};

const SECOND: Duration = Duration::from_secs(1);

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// How far `timestamp` lies from now, in milliseconds.
fn age(timestamp: &Value) -> i64 {
    let text = timestamp.as_str().unwrap_or_else(|| panic!("{timestamp}"));
    let at = parse_timestamp(text).unwrap_or_else(|| panic!("{text}"));
    now_millis() - at.duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

/// The time a snowflake id was made at, as milliseconds since the epoch.
fn id_millis(id: &Value) -> i64 {
    let id: u64 = id
        .as_str()
        .unwrap_or_else(|| panic!("{id}"))
        .parse()
        .unwrap();
    (id >> 16) as i64
}

/// An SSE connection read event by event, as `{"event", "payload"}` values.
struct Events {
    conn: Conn,
    decoder: EventDecoder,
}

impl Events {
    async fn open(server: &TestServer, path: &str) -> Events {
        let mut conn = Conn::get(server.addr(), path, &[AUTH]).await;
        assert_eq!(conn.head.status, 200);
        assert!(conn.read_until_contains(b":)\n", SECOND).await);
        Events {
            conn,
            decoder: EventDecoder::new(),
        }
    }

    async fn next(&mut self) -> Value {
        let deadline = tokio::time::Instant::now() + 5 * SECOND;
        loop {
            while let Some(item) = self.decoder.poll() {
                if let StreamItem::Event(e) = item.unwrap() {
                    return json!({"event": e.name(), "payload": e.payload().to_json_value()});
                }
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            assert!(!left.is_zero(), "no event in time");
            self.conn.read_some(left).await;
            self.decoder.feed(&std::mem::take(&mut self.conn.body));
        }
    }
}

#[tokio::test]
async fn a_replay_goes_out_stamped_now_with_rising_ids() {
    let server = TestServer::builder()
        .replay(replay::bundled(), 500.0)
        .start()
        .await
        .unwrap();
    let mut public = Events::open(&server, "/api/v1/streaming/public").await;
    let mut notifications = Events::open(&server, "/api/v1/streaming/user/notification").await;

    let (mut updates, mut edits, mut deletes) = (0, 0, 0);
    let mut last_id = 0;
    while updates < 40 || edits < 2 || deletes < 2 {
        let event = public.next().await;
        let payload = &event["payload"];
        match event["event"].as_str().unwrap() {
            "update" => {
                updates += 1;
                let id: u64 = payload["id"].as_str().unwrap().parse().unwrap();
                assert!(id > last_id, "ids must rise: {id} after {last_id}");
                last_id = id;
                let age = age(&payload["created_at"]);
                assert!((-1000..5000).contains(&age), "created_at {age} ms ago");
                assert!((id_millis(&payload["id"]) - now_millis()).abs() < 5000);
            }
            "status.update" => {
                edits += 1;
                let age = age(&payload["edited_at"]);
                assert!((-1000..5000).contains(&age), "edited_at {age} ms ago");
                // The edit names the status as it went out, not as recorded.
                assert!(
                    now_millis() - id_millis(&payload["id"]) < 60_000,
                    "{payload}"
                );
            }
            "delete" => {
                deletes += 1;
                assert!(now_millis() - id_millis(payload) < 60_000, "{payload}");
            }
            other => panic!("unexpected {other} on public"),
        }
    }

    let mut last_id = 0;
    for _ in 0..5 {
        let event = notifications.next().await;
        assert_eq!(event["event"], "notification");
        let payload = &event["payload"];
        let id: u64 = payload["id"].as_str().unwrap().parse().unwrap();
        assert!(id > last_id, "ids must rise: {id} after {last_id}");
        last_id = id;
        assert!((-1000..5000).contains(&age(&payload["created_at"])));
        if payload["status"].is_object() {
            assert!((-1000..5000).contains(&age(&payload["status"]["created_at"])));
        }
    }
}

/// Publishes a status to `public` over the control endpoint.
async fn publish(server: &TestServer, stamp: Option<&str>, payload: &Value) -> Response {
    let mut body = json!({"stream": "public", "event": "update", "payload": payload});
    if let Some(stamp) = stamp {
        body["stamp"] = stamp.into();
    }
    post_json(server.addr(), "/api/testkit/publish", &body).await
}

#[tokio::test]
async fn publishes_fill_in_restamp_or_keep_as_asked() {
    let server = TestServer::builder().start().await.unwrap();
    let mut public = Events::open(&server, "/api/v1/streaming/public").await;
    let recorded: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{FIXTURES}/entities/status.json")).unwrap(),
    )
    .unwrap();

    // Verbatim: every field as given, down to the old id and time.
    assert_eq!(
        publish(&server, Some("verbatim"), &recorded)
            .await
            .head
            .status,
        200
    );
    assert_eq!(public.next().await["payload"], recorded);

    // By default, what a test gives is kept...
    assert_eq!(publish(&server, None, &recorded).await.head.status, 200);
    assert_eq!(public.next().await["payload"], recorded);

    // ...and what it leaves out is filled in, as the server would make it.
    let mut without_id = recorded.clone();
    without_id["id"] = Value::Null;
    assert_eq!(publish(&server, None, &without_id).await.head.status, 200);
    let filled = public.next().await["payload"].clone();
    assert!((-1000..5000).contains(&age(&filled["created_at"])));
    assert_eq!(filled["content"], recorded["content"]);

    // Live: a fresh id and time even though the payload had its own.
    assert_eq!(
        publish(&server, Some("live"), &recorded).await.head.status,
        200
    );
    let live = public.next().await["payload"].clone();
    assert!((-1000..5000).contains(&age(&live["created_at"])));
    let id = |status: &Value| status["id"].as_str().unwrap().parse::<u64>().unwrap();
    assert!(id(&live) > id(&filled), "fresh ids rise");
    assert_eq!(live["account"], recorded["account"]);

    let refused = publish(&server, Some("yesterday"), &recorded).await;
    assert_eq!(refused.head.status, 422);
}
