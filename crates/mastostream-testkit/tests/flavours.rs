//! The other servers' own rules, as the flavours emulate them (the sources
//! are cited in src/flavour.rs): checked on the wire with a plain WebSocket
//! and a raw HTTP/1.1 client, not through our own client.

mod common;

use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use mastostream_proto::Channel;
use mastostream_testkit::{Flavour, Publish, TestServer};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const SECOND: Duration = Duration::from_secs(1);

async fn server(flavour: Flavour) -> TestServer {
    TestServer::builder()
        .flavour(flavour)
        .token("good")
        .start()
        .await
        .unwrap()
}

/// Opens a WebSocket at `query`, with these extra request headers.
async fn connect(
    server: &TestServer,
    query: &str,
    headers: &[(&'static str, &str)],
) -> Result<Ws, WsError> {
    let url = format!("ws://{}/api/v1/streaming{query}", server.addr());
    let mut request = url.into_client_request().unwrap();
    for (name, value) in headers {
        request.headers_mut().insert(*name, value.parse().unwrap());
    }
    tokio_tungstenite::connect_async(request)
        .await
        .map(|(ws, _)| ws)
}

fn refused_with(result: Result<Ws, WsError>) -> u16 {
    match result {
        Err(WsError::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("not refused with a status: {other}"),
        Ok(_) => panic!("the upgrade was accepted"),
    }
}

async fn send(ws: &mut Ws, frame: Value) {
    ws.send(Message::text(frame.to_string())).await.unwrap();
}

/// The next text frame as JSON; panics after a second.
async fn next_json(ws: &mut Ws) -> Value {
    loop {
        match tokio::time::timeout(SECOND, ws.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => return serde_json::from_str(&text).unwrap(),
            Ok(Some(Ok(_))) => continue,
            other => panic!("no frame: {other:?}"),
        }
    }
}

/// A `pleroma:respond` frame's payload, decoded.
async fn respond(ws: &mut Ws) -> Value {
    let frame = next_json(ws).await;
    assert_eq!(frame["event"], "pleroma:respond", "{frame}");
    assert!(frame.get("stream").is_none(), "{frame}");
    serde_json::from_str(frame["payload"].as_str().unwrap()).unwrap()
}

/// Pleroma 2.7 reads the token from `?access_token=` only: an
/// `Authorization` header or a subprotocol leaves the connection
/// anonymous (a user stream in the URL is then a 401 before the upgrade),
/// and a bad token is a 401 too. Akkoma reads the subprotocol (echoing it)
/// but no header either.
#[tokio::test]
async fn pleroma_and_akkoma_read_the_token_where_their_handlers_do() {
    let pleroma = server(Flavour::Pleroma).await;
    let user = "?stream=user";
    let bearer = [("authorization", "Bearer good")];
    assert_eq!(refused_with(connect(&pleroma, user, &bearer).await), 401);
    let protocol = [("sec-websocket-protocol", "good")];
    assert_eq!(refused_with(connect(&pleroma, user, &protocol).await), 401);
    assert_eq!(
        refused_with(connect(&pleroma, "?stream=user&access_token=bad", &[]).await),
        401
    );
    assert!(
        connect(&pleroma, "?stream=user&access_token=good", &[])
            .await
            .is_ok()
    );
    // Anonymous, a public stream opens.
    assert!(connect(&pleroma, "?stream=public", &[]).await.is_ok());

    let akkoma = server(Flavour::Akkoma).await;
    assert_eq!(refused_with(connect(&akkoma, user, &bearer).await), 401);
    assert!(connect(&akkoma, user, &protocol).await.is_ok());
    assert!(
        connect(&akkoma, "?stream=user&access_token=good", &[])
            .await
            .is_ok()
    );
}

/// Pleroma's in-band login: an anonymous connection is refused a user
/// stream (`unauthorized`), logs in with `pleroma:authenticate` (a bad
/// token is refused and changes nothing), may then subscribe, and may not
/// log in twice. Every answer is a `pleroma:respond` with no `stream`.
#[tokio::test]
async fn pleroma_authenticates_in_band() {
    let pleroma = server(Flavour::Pleroma).await;
    let mut ws = connect(&pleroma, "", &[]).await.unwrap();
    send(&mut ws, json!({"type": "subscribe", "stream": "user"})).await;
    assert_eq!(
        respond(&mut ws).await,
        json!({"type": "subscribe", "result": "error", "error": "unauthorized"})
    );
    send(
        &mut ws,
        json!({"type": "pleroma:authenticate", "token": "bad"}),
    )
    .await;
    assert_eq!(
        respond(&mut ws).await,
        json!({"type": "pleroma:authenticate", "result": "error", "error": "unauthorized"})
    );
    send(
        &mut ws,
        json!({"type": "pleroma:authenticate", "token": "good"}),
    )
    .await;
    assert_eq!(
        respond(&mut ws).await,
        json!({"type": "pleroma:authenticate", "result": "success"})
    );
    send(&mut ws, json!({"type": "subscribe", "stream": "user"})).await;
    assert_eq!(
        respond(&mut ws).await,
        json!({"type": "subscribe", "result": "success"})
    );
    send(
        &mut ws,
        json!({"type": "pleroma:authenticate", "token": "good"}),
    )
    .await;
    assert_eq!(
        respond(&mut ws).await,
        json!({"type": "pleroma:authenticate", "result": "error", "error": "already_authenticated"})
    );
    // The user stream is held: an event reaches it.
    pleroma.publish(Publish::new("delete", "5").to(Channel::User));
    let frame = next_json(&mut ws).await;
    assert_eq!(
        (&frame["event"], &frame["payload"]),
        (&json!("delete"), &json!("5"))
    );

    // Akkoma has no in-band login: the frame is ignored, and the next
    // thing on the wire is the pong to a text ping.
    let akkoma = server(Flavour::Akkoma).await;
    let mut ws = connect(&akkoma, "", &[]).await.unwrap();
    send(
        &mut ws,
        json!({"type": "pleroma:authenticate", "token": "good"}),
    )
    .await;
    ws.send(Message::text("ping")).await.unwrap();
    match tokio::time::timeout(SECOND, ws.next()).await {
        Ok(Some(Ok(Message::Text(text)))) => assert_eq!(text.as_str(), "pong"),
        other => panic!("{other:?}"),
    }
}

/// Pleroma's chat stream takes a logged-in subscribe and gets
/// `pleroma:chat_update` labelled `["user:pleroma_chat"]`; the user stream
/// gets the same update labelled `["user"]`. Akkoma has no such topic.
#[tokio::test]
async fn pleroma_chat_updates_go_to_the_chat_and_the_user_stream() {
    let pleroma = server(Flavour::Pleroma).await;
    let mut ws = connect(&pleroma, "?access_token=good", &[]).await.unwrap();
    for stream in ["user:pleroma_chat", "user"] {
        send(&mut ws, json!({"type": "subscribe", "stream": stream})).await;
        assert_eq!(respond(&mut ws).await["result"], "success");
    }
    let chat = json!({"id": "9", "unread": 1});
    pleroma.publish(Publish::new("pleroma:chat_update", chat.clone()));
    let mut labels = Vec::new();
    for _ in 0..2 {
        let frame = next_json(&mut ws).await;
        assert_eq!(frame["event"], "pleroma:chat_update");
        let payload: Value = serde_json::from_str(frame["payload"].as_str().unwrap()).unwrap();
        assert_eq!(payload, chat);
        labels.push(frame["stream"].clone());
    }
    labels.sort_by_key(Value::to_string);
    assert_eq!(labels, [json!(["user"]), json!(["user:pleroma_chat"])]);

    let akkoma = server(Flavour::Akkoma).await;
    let refused = connect(&akkoma, "?stream=user:pleroma_chat&access_token=good", &[]).await;
    assert_eq!(refused_with(refused), 404);
}

/// Mastodon 4.3 and later drop an event published without a payload
/// (`filters_changed`, as Rails sends it); 4.1 sent it, `data: undefined`
/// over SSE and a frame without `payload` over the WebSocket. An event
/// published after it shows what the stream carried in between.
#[tokio::test]
async fn payload_less_events_are_dropped_from_mastodon_4_3() {
    for (flavour, sent) in [(Flavour::Mastodon, false), (Flavour::Mastodon41, true)] {
        let server = server(flavour).await;
        let mut sse = Conn::get(
            server.addr(),
            "/api/v1/streaming/user",
            &[("Authorization", "Bearer good")],
        )
        .await;
        let mut ws = connect(&server, "?stream=user&access_token=good", &[])
            .await
            .unwrap();
        assert!(server.wait_for_subscriptions(2, SECOND).await);
        server.publish(Publish::new("filters_changed", Value::Null).to(Channel::User));
        server.publish(Publish::new("delete", "7").to(Channel::User));

        assert!(
            sse.read_until_contains(b"data: 7\n", SECOND).await,
            "{flavour:?}"
        );
        let text = String::from_utf8_lossy(&sse.body).into_owned();
        assert_eq!(
            text.contains("event: filters_changed\ndata: undefined\n\n"),
            sent,
            "{flavour:?}: {text}"
        );
        let first = next_json(&mut ws).await;
        if sent {
            assert_eq!(
                first,
                json!({"stream": ["user"], "event": "filters_changed"})
            );
            assert_eq!(next_json(&mut ws).await["payload"], "7");
        } else {
            assert_eq!(first["payload"], "7", "{flavour:?}: {first}");
        }
    }
}
