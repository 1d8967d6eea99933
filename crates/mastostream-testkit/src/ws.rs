//! WebSocket streaming on `/api/v1/streaming`: many subscriptions on one connection.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::ws::{
    CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade,
    rejection::WebSocketUpgradeRejection,
};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use mastostream_proto::{Channel, ChannelError, percent_encode};
use serde::Deserialize;
use tokio::time::{Instant, MissedTickBehavior, interval_at};

use crate::auth::{AuthError, TokenSource};
use crate::flavour::{Flavour, Refusal};
use crate::http;
use crate::hub::{Hub, Outgoing, Transport};
use crate::replay::Cursor;
use crate::state::AppState;

/// `GET /api/v1/streaming`: a WebSocket upgrade, or (without one) what
/// Mastodon's Rails side answers there — a redirect to the streaming host.
pub async fn entry(
    State(state): State<AppState>,
    Query(query): Query<http::Query>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    match upgrade {
        Ok(upgrade) => self::upgrade(state, query, headers, upgrade),
        Err(_) => rails_streaming_redirect(&state, &headers, &query),
    }
}

/// Accepts (or refuses) a WebSocket upgrade, on whatever path it came.
pub fn upgrade(
    state: AppState,
    query: http::Query,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    if let Some(response) = crate::sse::rejection(&state) {
        return response;
    }
    let flavour = state.settings.flavour;
    // What the server does not read is not there for it (Pleroma reads
    // only the query, Akkoma no header: see `Flavour::reads_token_from`;
    // every flavour reads the query).
    let mut readable = headers.clone();
    if !flavour.reads_token_from(TokenSource::Header) {
        readable.remove(header::AUTHORIZATION);
    }
    if !flavour.reads_token_from(TokenSource::Protocol) {
        readable.remove(header::SEC_WEBSOCKET_PROTOCOL);
    }
    let checked = state.settings.tokens.check(&readable, &query);
    let logged_in = checked.is_ok();
    let source = match checked {
        Ok((_, source)) => Some(source),
        // Mastodon 4.1 took anonymous connections for the public streams,
        // and Pleroma and Akkoma take them still.
        Err(AuthError::Missing) if flavour.anonymous_websocket() => None,
        // websocket_handler.ex, `handle_error`: a bad token is a 401.
        Err(_) if flavour.refuses_unknown_before_upgrade() => {
            return (StatusCode::UNAUTHORIZED, "Unauthorized").into_response();
        }
        // …and refused others through the ws library: a bare 401.
        Err(_) if flavour.anonymous_public() => {
            return Response::builder()
                .status(StatusCode::UNAUTHORIZED)
                .header(header::CONNECTION, "close")
                .header(header::CONTENT_TYPE, "text/html")
                .body(Body::from("Unauthorized"))
                .unwrap_or_else(|_| StatusCode::UNAUTHORIZED.into_response());
        }
        Err(error) => {
            // Mastodon refuses the upgrade with a bare status and the reason in a header.
            return Response::builder()
                .status(StatusCode::UNAUTHORIZED)
                .header(header::CONNECTION, "close")
                .header(header::CONTENT_TYPE, "text/plain")
                .header(header::CONTENT_LENGTH, "0")
                .header("x-error-message", error.message())
                .body(Body::empty())
                .unwrap_or_else(|_| StatusCode::UNAUTHORIZED.into_response());
        }
    };
    let initial = query.get("stream").map(|name| {
        let arg = if name == "list" {
            query.get("list")
        } else {
            query.get("tag")
        };
        let allow = query.get("allow_local_only").map(String::as_str);
        flavour.channel(name, arg.map(String::as_str), allow)
    });
    if flavour.refuses_unknown_before_upgrade() {
        match &initial {
            Some(Err(_)) => return StatusCode::NOT_FOUND.into_response(),
            // websocket_handler.ex: `get_topic` refuses a user stream to an
            // anonymous connection, and `handle_error` answers 401.
            Some(Ok(stream)) if !logged_in && !stream.is_public() => {
                return (StatusCode::UNAUTHORIZED, "Unauthorized").into_response();
            }
            _ => {}
        }
    }
    let mut upgrade = upgrade;
    if source == Some(TokenSource::Protocol)
        && let Some(protocol) = headers
            .get(header::SEC_WEBSOCKET_PROTOCOL)
            .and_then(|v| v.to_str().ok())
    {
        // Echo the token-as-protocol, or browsers drop the connection.
        upgrade = upgrade.protocols([protocol.trim().to_owned()]);
    }
    let hub = state.hub.clone();
    let ping_interval = state.settings.ping_interval;
    let cursor = state.paced_replay.clone().map(Cursor::new);
    let tokens = state.settings.tokens.clone();
    upgrade
        .read_buffer_size(16 * 1024)
        .on_upgrade(move |socket| {
            connection(
                socket,
                hub,
                (flavour, logged_in, tokens),
                ping_interval,
                initial,
                cursor,
            )
        })
}

/// What Rails answers at `/api/v1/streaming`: 301 to the same URL on the
/// streaming host (only host and port swapped), or 404 on the same host.
fn rails_streaming_redirect(
    state: &AppState,
    headers: &HeaderMap,
    query: &http::Query,
) -> Response {
    let own_host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    match &state.settings.streaming_url {
        Some(url) if !url_host(url).eq_ignore_ascii_case(own_host) => {
            let mut target = format!("http://{}/api/v1/streaming", url_host(url));
            let mut pairs: Vec<_> = query.iter().collect();
            pairs.sort();
            for (i, (key, value)) in pairs.into_iter().enumerate() {
                target.push(if i == 0 { '?' } else { '&' });
                target.push_str(&format!(
                    "{}={}",
                    percent_encode(key),
                    percent_encode(value)
                ));
            }
            Response::builder()
                .status(StatusCode::MOVED_PERMANENTLY)
                .header(header::LOCATION, target)
                .body(Body::empty())
                .unwrap_or_else(|_| StatusCode::MOVED_PERMANENTLY.into_response())
        }
        _ => http::json_error(StatusCode::NOT_FOUND, "Not Found"),
    }
}

/// The `host[:port]` of a URL.
fn url_host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.split(['/', '?', '#']).next().unwrap_or(rest)
}

#[derive(Deserialize)]
struct Command {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    stream: String,
    #[serde(default)]
    tag: Option<String>,
    #[serde(default)]
    list: Option<serde_json::Value>,
    /// glitch-soc's flag on `public` and `public:media`.
    #[serde(default)]
    allow_local_only: Option<serde_json::Value>,
}

impl Command {
    fn stream_on(&self, flavour: Flavour) -> Result<Channel, ChannelError> {
        let allow = match &self.allow_local_only {
            Some(serde_json::Value::String(text)) => Some(text.clone()),
            Some(serde_json::Value::Bool(false)) | None => None,
            Some(other) => Some(other.to_string()),
        };
        let list = match &self.list {
            Some(serde_json::Value::String(id)) => Some(id.clone()),
            Some(serde_json::Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let arg = if self.stream == "list" {
            list
        } else {
            self.tag.clone()
        };
        flavour.channel(&self.stream, arg.as_deref(), allow.as_deref())
    }
}

/// Mastodon's error frame for a stream it cannot name (before 4.3, with no
/// `status`).
fn error_frame(flavour: Flavour, error: &ChannelError) -> String {
    let message = match error {
        ChannelError::UnknownChannel => "Unknown stream type".to_owned(),
        other => other.to_string(),
    };
    if flavour == Flavour::Mastodon41 {
        // 4.1's `subscribeWebsocketToChannel` sends `err.toString()`.
        return serde_json::json!({ "error": flavour.error_text(&message) }).to_string();
    }
    serde_json::json!({"error": message, "status": 400}).to_string()
}

/// Mastodon 4.1's answer to an anonymous subscribe to a stream that is
/// not public (`checkScopes`).
fn scope_frame(flavour: Flavour) -> String {
    let text = flavour.error_text("Access token does not cover required scopes");
    serde_json::json!({ "error": text }).to_string()
}

fn text(frame: String) -> Message {
    Message::Text(Utf8Bytes::from(frame))
}

async fn connection(
    socket: WebSocket,
    hub: Arc<Hub>,
    (flavour, mut logged_in, tokens): (Flavour, bool, crate::auth::TokenPolicy),
    ping_interval: std::time::Duration,
    initial: Option<Result<Channel, ChannelError>>,
    mut cursor: Option<Cursor>,
) {
    let (mut sink, mut incoming) = socket.split();
    // Watch for disconnects before the connection is visible (see sse.rs).
    let mut disconnect = hub.faults.watch_disconnect();
    let (registration, mut events) = hub.register(Transport::Websocket, Vec::new());
    let id = registration.id;
    // The connection's subscriptions, mirrored here for the paced replay.
    let mut subscriptions: Vec<Channel> = Vec::new();
    match initial {
        Some(Ok(stream)) if !logged_in && !stream.is_public() => {
            if sink.send(text(scope_frame(flavour))).await.is_err() {
                return;
            }
        }
        // GoToSocial opens it, and never pushes to it.
        Some(Ok(stream)) if !flavour.pushes(&stream) => {}
        Some(Ok(stream)) => {
            hub.subscribe(id, stream.clone());
            subscriptions.push(stream);
        }
        Some(Err(error)) if sink.send(text(error_frame(flavour, &error))).await.is_err() => return,
        Some(Err(_)) | None => {}
    }
    let mut stall = hub.faults.watch_stall();
    let mut pings = interval_at(Instant::now() + ping_interval, ping_interval);
    pings.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut answered_ping = true;
    // Error frames whose lookup has not finished yet, by when it does.
    let mut deferred: std::collections::VecDeque<(Instant, String)> = Default::default();
    loop {
        let stalled_until = (*stall.borrow_and_update()).filter(|t| *t > Instant::now());
        if let Some(until) = stalled_until {
            tokio::select! {
                // Dropping the socket closes TCP with no close frame: clients see 1006.
                _ = disconnect.changed() => return,
                _ = tokio::time::sleep_until(until) => {}
                _ = stall.changed() => {}
            }
            // A pong that came during the silence is still unread: start the
            // ping clock afresh rather than cut the client for it.
            answered_ping = true;
            pings.reset();
            continue;
        }
        tokio::select! {
            biased;
            _ = disconnect.changed() => return,
            _ = stall.changed() => {}
            _ = pings.tick() => {
                // Mastodon cuts a client that did not answer the previous ping.
                if !answered_ping {
                    return;
                }
                answered_ping = false;
                if sink.send(Message::Ping(Default::default())).await.is_err() {
                    return;
                }
            }
            message = incoming.next() => match message {
                Some(Ok(Message::Text(frame))) if flavour.authenticates_in_band() && authenticate_frame(frame.as_str()).is_some() => {
                    let token = authenticate_frame(frame.as_str()).unwrap_or_default();
                    let (reply, now) = authenticate(flavour, &tokens, logged_in, &token);
                    logged_in = now;
                    if sink.send(text(reply)).await.is_err() {
                        return;
                    }
                }
                Some(Ok(Message::Text(frame))) => {
                    match handle_command(&hub, (flavour, logged_in), id, frame.as_str(), &mut subscriptions) {
                        Some(Reply::Now(reply)) if sink.send(text(reply.clone())).await.is_err() => return,
                        Some(Reply::Now(_)) => {}
                        Some(Reply::Later(reply)) => {
                            deferred.push_back((Instant::now() + LIST_LOOKUP, reply));
                        }
                        Some(Reply::Close(code)) => {
                            let close = CloseFrame { code, reason: Utf8Bytes::from_static("") };
                            let _ = sink.send(Message::Close(Some(close))).await;
                            return;
                        }
                        None => {}
                    }
                }
                Some(Ok(Message::Pong(_))) => answered_ping = true,
                Some(Ok(Message::Ping(_))) => {}
                Some(Ok(Message::Binary(_))) => {
                    let close = CloseFrame {
                        code: 1003,
                        reason: Utf8Bytes::from_static(
                            "The mastodon streaming server does not support binary messages",
                        ),
                    };
                    let _ = sink.send(Message::Close(Some(close))).await;
                    return;
                }
                Some(Ok(Message::Close(_))) => {
                    // The reply tungstenite queued goes out with this flush.
                    let _ = sink.flush().await;
                    return;
                }
                Some(Err(_)) | None => return,
            },
            _ = sleep_until_first(&deferred) => {
                if let Some((_, reply)) = deferred.pop_front()
                    && sink.send(text(reply)).await.is_err()
                {
                    return;
                }
            }
            out = events.recv() => match out {
                Some(Outgoing::Event { encoded, stream }) if flavour.drops(&encoded, &stream) => {}
                Some(Outgoing::Event { encoded, stream }) => {
                    let encoded = encoded.for_subscriber(flavour, &stream, logged_in);
                    if sink.send(text(flavour.frame(encoded, &stream, subscriptions.first()))).await.is_err() {
                        return;
                    }
                }
                Some(Outgoing::Raw(_)) => {}
                None => return,
            },
            // Last, so that pings and commands go first: the paced replay.
            _ = std::future::ready(()), if cursor.is_some() && !subscriptions.is_empty() => {
                let next = cursor.as_mut().and_then(|c| c.next_for(&subscriptions));
                if let Some((encoded, stream)) = next
                    && sink.send(text(flavour.frame(&encoded, stream, subscriptions.first()))).await.is_err()
                {
                    return;
                }
            }
        }
    }
}

/// The token of Pleroma's in-band `{"type":"pleroma:authenticate",
/// "token":…}` frame, if `frame` is one.
fn authenticate_frame(frame: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(frame).ok()?;
    if value.get("type")?.as_str()? != "pleroma:authenticate" {
        return None;
    }
    // A frame without a string token matches none of the handler's
    // clauses: Pleroma only logs it (an empty token fails below instead).
    value.get("token")?.as_str().map(str::to_owned)
}

/// Pleroma's answer to `pleroma:authenticate` on a connection `logged_in`
/// or not, and whether it is logged in after (websocket_handler.ex,
/// `handle_client_event`: only an anonymous connection may log in).
fn authenticate(
    flavour: Flavour,
    tokens: &crate::auth::TokenPolicy,
    logged_in: bool,
    token: &str,
) -> (String, bool) {
    const KIND: &str = "pleroma:authenticate";
    if logged_in {
        return (respond(flavour, KIND, Some("already_authenticated")), true);
    }
    let mut query = std::collections::HashMap::new();
    query.insert("access_token".to_owned(), token.to_owned());
    match tokens.check(&HeaderMap::new(), &query) {
        Ok(_) => (respond(flavour, KIND, None), true),
        Err(_) => (respond(flavour, KIND, Some("unauthorized")), false),
    }
}

fn respond(flavour: Flavour, kind: &str, refusal: Option<&str>) -> String {
    flavour.answer(kind, refusal).unwrap_or_default()
}

/// Mastodon's text for a list the token's user does not own.
pub(crate) const FOREIGN_LIST: &str = "Not authorized to stream this list";

/// How long the refusal of someone else's list takes: Mastodon answers it
/// after a database lookup, so later subscribes are answered first.
const LIST_LOOKUP: std::time::Duration = std::time::Duration::from_millis(50);

/// The answer to a command frame.
enum Reply {
    /// An error frame, now.
    Now(String),
    /// An error frame, after a lookup.
    Later(String),
    /// Closing the connection with this code.
    Close(u16),
}

/// Applies a subscribe or unsubscribe frame; returns an error frame to send, if any.
fn handle_command(
    hub: &Hub,
    (flavour, logged_in): (Flavour, bool),
    connection: u64,
    frame: &str,
    mirror: &mut Vec<Channel>,
) -> Option<Reply> {
    if let Some(answer) = flavour.answer_text(frame) {
        return Some(Reply::Now(answer.to_owned()));
    }
    // Mastodon ignores frames it cannot parse.
    let command: Command = serde_json::from_str(frame).ok()?;
    if command.kind == "subscribe" && flavour.ignores_subscribe(&command.stream) {
        return None;
    }
    let reply = handle_mastodon_command(hub, connection, &command, (flavour, logged_in), mirror);
    // Mastodon 4.1 and glitch-soc answer as Mastodon does (4.1 in its own
    // words: see `error_frame`).
    if matches!(
        flavour,
        Flavour::Mastodon | Flavour::Mastodon41 | Flavour::GlitchSoc
    ) {
        return reply;
    }
    // The others answer in their own words (see flavour.rs): Pleroma
    // acknowledges, Akkoma says nothing, Iceshrimp.NET closes.
    let reason = match (&reply, command.stream_on(flavour)) {
        (None, _) => None,
        (Some(_), Err(_)) => Some("unknown"),
        (Some(_), Ok(Channel::List(_))) => Some("list"),
        (Some(_), Ok(_)) => Some("scope"),
    };
    match reason.map(|r| flavour.refusal(r)) {
        Some(Refusal::Close(code)) => Some(Reply::Close(code)),
        Some(Refusal::Silence) => None,
        Some(Refusal::Frame) | None => {
            let words = match reason {
                Some("unknown") => Some("bad_topic"),
                Some(_) => Some("unauthorized"),
                None => None,
            };
            flavour.answer(&command.kind, words).map(Reply::Now)
        }
    }
}

/// A command as Mastodon takes it; the error frame it answers, if any.
fn handle_mastodon_command(
    hub: &Hub,
    connection: u64,
    command: &Command,
    (flavour, logged_in): (Flavour, bool),
    mirror: &mut Vec<Channel>,
) -> Option<Reply> {
    match command.kind.as_str() {
        "subscribe" => match command.stream_on(flavour) {
            Ok(_) if let Some((status, error)) = hub.faults.take_reject_subscribe() => Some(
                Reply::Now(serde_json::json!({"error": error, "status": status}).to_string()),
            ),
            Ok(Channel::List(list)) if hub.faults.is_foreign_list(&list) => Some(Reply::Later(
                serde_json::json!({"error": FOREIGN_LIST, "status": 401}).to_string(),
            )),
            Ok(stream) if !logged_in && !stream.is_public() => {
                Some(Reply::Now(scope_frame(flavour)))
            }
            // glitch-soc holds one subscription per Redis channel: a second
            // subscribe to the one `public` reads is ignored without a word.
            Ok(stream)
                if flavour == Flavour::GlitchSoc
                    && mirror
                        .iter()
                        .any(|s| crate::flavour::same_redis_channel(s, &stream)) =>
            {
                None
            }
            Ok(stream) => {
                if !mirror.iter().any(|s| s.matches(&stream)) {
                    mirror.push(stream.clone());
                }
                hub.subscribe(connection, stream);
                None
            }
            Err(error) => Some(Reply::Now(error_frame(flavour, &error))),
        },
        "unsubscribe" if !flavour.handles_unsubscribe() => None,
        "unsubscribe" => match command.stream_on(flavour) {
            // And an unsubscribe from either ends the one it holds.
            Ok(stream)
                if flavour == Flavour::GlitchSoc
                    && let Some(held) = mirror
                        .iter()
                        .find(|s| crate::flavour::same_redis_channel(s, &stream))
                        .cloned() =>
            {
                mirror.retain(|s| *s != held);
                hub.unsubscribe(connection, &held);
                None
            }
            Ok(stream) => {
                mirror.retain(|s| !s.matches(&stream));
                hub.unsubscribe(connection, &stream);
                None
            }
            Err(_) => Some(Reply::Now(
                serde_json::json!({"error": "Error unsubscribing from channel"}).to_string(),
            )),
        },
        _ => None,
    }
}

/// Sleeps until the first deferred reply is due, or forever when none is.
async fn sleep_until_first(deferred: &std::collections::VecDeque<(Instant, String)>) {
    match deferred.front() {
        Some((due, _)) => tokio::time::sleep_until(*due).await,
        None => std::future::pending().await,
    }
}
