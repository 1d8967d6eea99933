//! WebSocket streaming, driven with a plain tokio-tungstenite client.

mod common;

use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use mastostream_proto::Channel;
use mastostream_testkit::{Fault, Publish, TestServer};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const SECOND: Duration = Duration::from_secs(1);

async fn connect(server: &TestServer, query: &str, token: Option<&str>) -> Result<Ws, WsError> {
    let url = format!("ws://{}/api/v1/streaming{query}", server.addr());
    let mut request = url.into_client_request().unwrap();
    if let Some(token) = token {
        request
            .headers_mut()
            .insert("Authorization", format!("Bearer {token}").parse().unwrap());
    }
    tokio_tungstenite::connect_async(request)
        .await
        .map(|(ws, _)| ws)
}

async fn send(ws: &mut Ws, frame: Value) {
    ws.send(Message::text(frame.to_string())).await.unwrap();
}

/// The next text frame as JSON, within `wait`.
async fn next_json(ws: &mut Ws, wait: Duration) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, ws.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => return Some(serde_json::from_str(&text).unwrap()),
            Ok(Some(Ok(_))) => continue,
            _ => return None,
        }
    }
}

/// Waits until the server has registered `count` subscriptions on its one connection.
async fn wait_subscriptions(server: &TestServer, count: usize) {
    let settled = server
        .wait_until(SECOND, |open| {
            open.first().map_or(0, |c| c.streams.len()) == count
        })
        .await;
    assert!(settled, "{:?}", server.connections());
}

#[tokio::test]
async fn multiplexed_frames_match_the_mastodon_capture() {
    let server = TestServer::builder().start().await.unwrap();
    let mut ws = connect(&server, "", Some("token")).await.unwrap();
    for frame in [
        json!({"type": "subscribe", "stream": "user"}),
        json!({"type": "subscribe", "stream": "hashtag", "tag": "rustlang"}),
        json!({"type": "subscribe", "stream": "public:local"}),
        json!({"type": "subscribe", "stream": "list", "list": "1"}),
        json!({"type": "subscribe", "stream": "nope"}),
    ] {
        send(&mut ws, frame).await;
    }
    let captured: Vec<Value> = std::fs::read_to_string(format!(
        "{FIXTURES}/mastodon-4.6.5/ws-multiplexed-frames.jsonl"
    ))
    .unwrap()
    .lines()
    .map(|l| serde_json::from_str(l).unwrap())
    .collect();
    // The capture opens with the error for `nope`.
    assert_eq!(next_json(&mut ws, SECOND).await.unwrap(), captured[0]);
    wait_subscriptions(&server, 4).await;
    for frame in &captured[1..] {
        let stream = Channel::from_ws_stream_array(
            &frame["stream"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap())
                .collect::<Vec<_>>(),
        )
        .unwrap();
        let payload = match frame.get("payload") {
            None => Value::Null,
            Some(Value::String(text)) => serde_json::from_str::<Value>(text)
                .ok()
                .filter(|v| v.is_object())
                .unwrap_or_else(|| Value::String(text.clone())),
            Some(other) => other.clone(),
        };
        // Recorded bytes: nothing stamped on them.
        let publish = Publish::new(frame["event"].as_str().unwrap(), payload)
            .to(stream)
            .verbatim();
        assert!(server.publish(publish) >= 1, "{frame}");
        let received = next_json(&mut ws, SECOND).await.unwrap();
        // The payload is a string on the wire; compare what it encodes.
        assert_eq!(received["stream"], frame["stream"]);
        assert_eq!(received["event"], frame["event"]);
        assert!(received["payload"].is_string() || frame.get("payload").is_none());
        let decode = |v: &Value| {
            v.as_str()
                .map(|s| serde_json::from_str::<Value>(s).unwrap_or(Value::String(s.into())))
        };
        assert_eq!(
            decode(&received["payload"]),
            decode(&frame["payload"]),
            "{frame}"
        );
    }
}

#[tokio::test]
async fn subscribe_at_connect_and_at_run_time_then_unsubscribe() {
    let server = TestServer::builder().start().await.unwrap();
    let mut ws = connect(&server, "?stream=hashtag&tag=Rust", Some("token"))
        .await
        .unwrap();
    wait_subscriptions(&server, 1).await;
    assert_eq!(
        server.publish(Publish::new("delete", "1").to(Channel::Hashtag("rust".into()))),
        1
    );
    let frame = next_json(&mut ws, SECOND).await.unwrap();
    // The tag as the client sent it.
    assert_eq!(
        frame,
        json!({"stream": ["hashtag", "Rust"], "event": "delete", "payload": "1"})
    );

    send(
        &mut ws,
        json!({"type": "subscribe", "stream": "public:remote:media"}),
    )
    .await;
    // A duplicate subscribe is ignored.
    send(
        &mut ws,
        json!({"type": "subscribe", "stream": "hashtag", "tag": "rust"}),
    )
    .await;
    wait_subscriptions(&server, 2).await;
    assert_eq!(
        server.publish(Publish::new("delete", "2").to(Channel::PublicRemoteMedia)),
        1
    );
    assert_eq!(
        next_json(&mut ws, SECOND).await.unwrap()["stream"],
        json!(["public:remote:media"])
    );

    send(
        &mut ws,
        json!({"type": "unsubscribe", "stream": "hashtag", "tag": "Rust"}),
    )
    .await;
    wait_subscriptions(&server, 1).await;
    assert_eq!(
        server.publish(Publish::new("delete", "3").to(Channel::Hashtag("rust".into()))),
        0
    );
}

#[tokio::test]
async fn every_stream_name_can_be_subscribed() {
    let server = TestServer::builder().start().await.unwrap();
    let mut ws = connect(&server, "", Some("token")).await.unwrap();
    let streams: Vec<Channel> = mastostream_proto::CHANNEL_NAMES
        .iter()
        .map(|name| Channel::from_name(name, Some("42")).unwrap())
        .collect();
    for stream in &streams {
        ws.send(Message::text(stream.ws_command(true)))
            .await
            .unwrap();
    }
    wait_subscriptions(&server, streams.len()).await;
    for stream in &streams {
        assert_eq!(
            server.publish(Publish::new("delete", stream.to_string()).to(stream.clone())),
            1
        );
        let frame = next_json(&mut ws, SECOND).await.unwrap();
        assert_eq!(frame["payload"], json!(stream.to_string()));
        assert_eq!(frame["stream"], json!(stream.ws_stream_array()));
    }
}

#[tokio::test]
async fn error_frames_for_bad_subscriptions() {
    let server = TestServer::builder().start().await.unwrap();
    let mut ws = connect(&server, "?stream=nope", Some("token"))
        .await
        .unwrap();
    assert_eq!(
        next_json(&mut ws, SECOND).await.unwrap(),
        json!({"error": "Unknown stream type", "status": 400})
    );
    send(&mut ws, json!({"type": "subscribe", "stream": "hashtag"})).await;
    assert_eq!(
        next_json(&mut ws, SECOND).await.unwrap(),
        json!({"error": "Missing tag name parameter", "status": 400})
    );
    send(&mut ws, json!({"type": "unsubscribe", "stream": "nope"})).await;
    assert_eq!(
        next_json(&mut ws, SECOND).await.unwrap(),
        json!({"error": "Error unsubscribing from channel"})
    );
    // Frames that are not commands are ignored; the connection stays usable.
    ws.send(Message::text("not json")).await.unwrap();
    send(&mut ws, json!({"type": "subscribe", "stream": "direct"})).await;
    wait_subscriptions(&server, 1).await;
}

#[tokio::test]
async fn upgrade_refused_without_a_good_token() {
    let server = TestServer::builder().token("good").start().await.unwrap();
    for (token, message) in [
        (None, "Missing access token"),
        (Some("bad"), "Invalid access token"),
    ] {
        match connect(&server, "?stream=user", token).await {
            Err(WsError::Http(response)) => {
                assert_eq!(response.status(), 401);
                assert_eq!(response.headers()["x-error-message"], message);
                assert_eq!(response.headers()["content-type"], "text/plain");
                assert_eq!(response.headers()["connection"], "close");
                assert!(response.body().as_ref().is_none_or(|b| b.is_empty()));
            }
            other => panic!("upgrade not refused: {:?}", other.map(|_| ())),
        }
    }
    assert!(connect(&server, "", Some("good")).await.is_ok());
    assert!(connect(&server, "?access_token=good", None).await.is_ok());
}

#[tokio::test]
async fn token_as_subprotocol_is_echoed() {
    let server = TestServer::builder().token("good").start().await.unwrap();
    let mut request = format!("ws://{}/api/v1/streaming", server.addr())
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "good".parse().unwrap());
    let (_, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(response.headers()["sec-websocket-protocol"], "good");
}

#[tokio::test]
async fn binary_frame_closes_with_1003() {
    let server = TestServer::builder().start().await.unwrap();
    let mut ws = connect(&server, "", Some("token")).await.unwrap();
    ws.send(Message::binary(vec![1, 2, 3])).await.unwrap();
    loop {
        match tokio::time::timeout(SECOND, ws.next()).await.unwrap() {
            Some(Ok(Message::Close(Some(frame)))) => {
                assert_eq!(u16::from(frame.code), 1003);
                assert_eq!(
                    frame.reason.as_str(),
                    "The mastodon streaming server does not support binary messages"
                );
                break;
            }
            Some(Ok(_)) => continue,
            other => panic!("no close frame: {other:?}"),
        }
    }
}

/// A client's close frame is answered with one, as Mastodon's `ws` does: the
/// client sees a clean close, not 1006.
#[tokio::test]
async fn a_close_frame_is_answered() {
    let server = TestServer::builder().start().await.unwrap();
    let mut ws = connect(&server, "?stream=user", Some("token"))
        .await
        .unwrap();
    assert!(server.wait_for_connections(1, SECOND).await);
    ws.close(None).await.unwrap();
    loop {
        match tokio::time::timeout(SECOND, ws.next()).await.unwrap() {
            Some(Ok(Message::Close(_))) | None => break,
            Some(Ok(_)) => continue,
            other => panic!("no clean close: {other:?}"),
        }
    }
    assert!(server.wait_for_connections(0, SECOND).await);
}

#[tokio::test]
async fn pings_and_a_client_that_never_pongs_is_cut() {
    let server = TestServer::builder()
        .ping_interval(Duration::from_millis(50))
        .start()
        .await
        .unwrap();
    // A reading client answers pings (tungstenite pongs on its own) and stays.
    let mut alive = connect(&server, "?stream=user", Some("token"))
        .await
        .unwrap();
    let mut pings = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(400);
    while tokio::time::Instant::now() < deadline {
        if let Ok(Some(Ok(Message::Ping(_)))) =
            tokio::time::timeout(Duration::from_millis(100), alive.next()).await
        {
            pings += 1;
        }
    }
    assert!(pings >= 3, "{pings} pings");
    assert_eq!(server.connections().len(), 1);
    // A client that never reads never pongs, and is dropped.
    let _silent = connect(&server, "?stream=public", Some("token"))
        .await
        .unwrap();
    assert!(server.wait_for_connections(2, SECOND).await);
    let deadline = tokio::time::Instant::now() + SECOND;
    loop {
        // Keep the good client answering meanwhile.
        let _ = tokio::time::timeout(Duration::from_millis(20), alive.next()).await;
        if server.connections().len() == 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the silent client was not cut"
        );
    }
}

#[tokio::test]
async fn disconnect_fault_drops_without_a_close_frame() {
    let server = TestServer::builder().start().await.unwrap();
    let mut ws = connect(&server, "?stream=user", Some("token"))
        .await
        .unwrap();
    assert!(server.wait_for_connections(1, SECOND).await);
    server.fault(Fault::Disconnect).unwrap();
    match tokio::time::timeout(SECOND, ws.next()).await.unwrap() {
        // tungstenite reports a TCP close with no close frame as an error (1006 to browsers).
        Some(Err(WsError::Protocol(_))) | Some(Err(WsError::Io(_))) | None => {}
        other => panic!("expected an abnormal close, got {other:?}"),
    }
}

#[tokio::test]
async fn stall_fault_holds_frames_and_pings() {
    let server = TestServer::builder()
        .ping_interval(Duration::from_millis(30))
        .start()
        .await
        .unwrap();
    let mut ws = connect(&server, "?stream=user", Some("token"))
        .await
        .unwrap();
    assert!(server.wait_for_connections(1, SECOND).await);
    server.fault(Fault::Stall { seconds: 0.3 }).unwrap();
    server.publish(Publish::new("delete", "5").to(Channel::User));
    let started = tokio::time::Instant::now();
    let frame = next_json(&mut ws, SECOND).await.unwrap();
    assert_eq!(frame["payload"], "5");
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn paced_replay_follows_the_subscriptions() {
    let events = mastostream_testkit::replay::parse(
        r#"{"stream":"user","event":"delete","payload":"1"}
{"stream":"public","event":"delete","payload":"2"}
{"stream":"direct","event":"delete","payload":"3"}"#,
    )
    .unwrap();
    let server = TestServer::builder()
        .replay(events, 0.0)
        .start()
        .await
        .unwrap();
    let mut ws = connect(&server, "?stream=user", Some("token"))
        .await
        .unwrap();
    for _ in 0..3 {
        assert_eq!(next_json(&mut ws, SECOND).await.unwrap()["payload"], "1");
    }
    send(&mut ws, json!({"type": "subscribe", "stream": "direct"})).await;
    // Frames for `user` already in flight come first; then `direct`'s join them.
    let mut seen = std::collections::HashSet::new();
    while !seen.contains("3") {
        let frame = next_json(&mut ws, SECOND)
            .await
            .expect("no frame for direct");
        seen.insert(frame["payload"].as_str().unwrap().to_owned());
    }
    assert!(
        !seen.contains("2"),
        "a frame for a stream not subscribed to"
    );
}

#[tokio::test]
async fn upgrade_is_accepted_on_any_path() {
    let server = TestServer::builder().start().await.unwrap();
    let url = format!(
        "ws://{}/api/v1/streaming/public?stream=direct",
        server.addr()
    );
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Authorization", "Bearer t".parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    wait_subscriptions(&server, 1).await;
    server.publish(Publish::new("delete", "9").to(Channel::Direct));
    assert_eq!(
        next_json(&mut ws, SECOND).await.unwrap()["stream"],
        json!(["direct"])
    );
}
