//! Server-Sent Events streaming, byte for byte as Mastodon 4.6 writes it.

use std::io;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ws::{WebSocketUpgrade, rejection::WebSocketUpgradeRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use futures_util::StreamExt;
use mastostream_proto::{Channel, ChannelError};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior, interval_at};

use crate::auth::AuthError;
use crate::http;
use crate::hub::{Outgoing, Transport};
use crate::replay::Cursor;
use crate::state::AppState;

/// How many body chunks may wait in front of a slow reader before the
/// connection's task waits too (so a paced replay follows the reader).
const BODY_QUEUE: usize = 64;

/// The size a paced replay's body chunks grow to.
const PACED_CHUNK: usize = 16 * 1024;

/// `GET /api/v1/streaming/{path}`.
pub async fn entry(
    State(state): State<AppState>,
    Path(path): Path<String>,
    Query(query): Query<http::Query>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    // Mastodon's upgrade handler does not look at the path.
    if let Ok(upgrade) = upgrade {
        return crate::ws::upgrade(state, query, headers, upgrade);
    }
    // The servers that serve no SSE have no such route (see flavour.rs).
    if !state.settings.flavour.serves_sse() {
        return http::json_error(StatusCode::NOT_FOUND, "Not Found");
    }
    if let Some(response) = rejection(&state) {
        return response;
    }
    let get = |key: &str| query.get(key).map(String::as_str);
    let stream = Channel::from_sse_path(&path, get("only_media"), get("tag"), get("list"));
    let flavour = state.settings.flavour;
    let mut logged_in = true;
    if flavour.anonymous_public() {
        // Mastodon 4.1: the token first (none needed for the public
        // streams), then the channel, unknown ones answered 404.
        match state.settings.tokens.check(&headers, &query) {
            Ok(_) => {}
            Err(AuthError::Missing) if matches!(&stream, Ok(s) if s.is_public()) => {
                logged_in = false;
            }
            Err(AuthError::Missing) => {
                let text = flavour.error_text("Access token does not cover required scopes");
                return http::json_error(StatusCode::UNAUTHORIZED, &text);
            }
            Err(error) => {
                let text = flavour.error_text(error.message());
                return http::json_error(StatusCode::UNAUTHORIZED, &text);
            }
        }
        if let Err(ChannelError::UnknownChannel) = stream {
            return http::json_error(StatusCode::NOT_FOUND, "Not found");
        }
    }
    // Mastodon checks the channel name before the token.
    if let Err(ChannelError::UnknownChannel) = stream {
        return http::json_error(StatusCode::BAD_REQUEST, "Unknown channel requested");
    }
    if logged_in && let Err(error) = state.settings.tokens.check(&headers, &query) {
        return http::json_error(StatusCode::UNAUTHORIZED, error.message());
    }
    let stream = match stream {
        Ok(stream) => stream,
        Err(error) => return http::json_error(StatusCode::BAD_REQUEST, &error.to_string()),
    };
    // glitch-soc reads `allow_local_only` from the query of `/public`
    // (`channelNameToIds` gets `req.query`).
    let stream = match (&stream, get("allow_local_only")) {
        (Channel::Public | Channel::PublicMedia, Some(allow)) => state
            .settings
            .flavour
            .channel(stream.name(), None, Some(allow))
            .unwrap_or(stream),
        _ => stream,
    };
    if let Channel::List(list) = &stream
        && state.hub.faults.is_foreign_list(list)
    {
        return http::json_error(StatusCode::UNAUTHORIZED, crate::ws::FOREIGN_LIST);
    }
    open(state, stream, logged_in)
}

/// A pending `reject` fault, as the response to send instead.
pub fn rejection(state: &AppState) -> Option<Response> {
    rejection_response(state.hub.faults.take_reject()?)
}

/// The response for a rejection: its status, Mastodon's error shape, `Retry-After`.
pub fn rejection_response(reject: crate::faults::Reject) -> Option<Response> {
    let status = StatusCode::from_u16(reject.status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let message = status.canonical_reason().unwrap_or("Error");
    let mut response = http::json_error(status, message);
    if let Some(seconds) = reject.retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    for (name, value) in &reject.headers {
        // What HTTP cannot carry is left out, not sent mangled.
        if let (Ok(name), Ok(value)) = (
            header::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
    Some(response)
}

fn open(state: AppState, stream: Channel, logged_in: bool) -> Response {
    let (body_tx, body_rx) = mpsc::channel::<Result<Bytes, io::Error>>(BODY_QUEUE);
    let cursor = state.paced_replay.clone().map(Cursor::new);
    let subscription = [stream.clone()];
    // Watch for disconnects before the connection is visible: a test that
    // waits for the subscription and then disconnects must not be missed.
    let disconnect = state.hub.faults.watch_disconnect();
    let end = state.hub.faults.watch_end();
    let (registration, events) = state.hub.register(Transport::Sse, vec![stream]);
    let hub = state.hub.clone();
    let heartbeat = state.settings.heartbeat;
    let flavour = state.settings.flavour;
    tokio::spawn(async move {
        let _registration = registration;
        let _ = run(
            &hub,
            Session {
                flavour,
                logged_in,
                heartbeat,
            },
            (disconnect, end),
            events,
            cursor,
            &subscription,
            &body_tx,
        )
        .await;
    });
    let body = tokio_stream_from(body_rx);
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, flavour.sse_cache_control())
        .header(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")
        .body(Body::from_stream(body))
        .unwrap_or_else(|_| {
            http::plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "An unexpected error occurred",
            )
        })
}

fn tokio_stream_from(
    mut rx: mpsc::Receiver<Result<Bytes, io::Error>>,
) -> impl futures_util::Stream<Item = Result<Bytes, io::Error>> + Send + 'static {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)).fuse()
}

/// Why the connection's task stopped writing.
struct Closed;

async fn send(body: &mpsc::Sender<Result<Bytes, io::Error>>, bytes: Bytes) -> Result<(), Closed> {
    body.send(Ok(bytes)).await.map_err(|_| Closed)
}

/// The connection's task: greeting, heartbeats, events, faults.
/// How one SSE connection is served.
struct Session {
    /// The server it behaves as.
    flavour: crate::Flavour,
    /// Whether the request had a token (Mastodon 4.1 served public
    /// streams without one).
    logged_in: bool,
    /// Between heartbeats.
    heartbeat: std::time::Duration,
}

async fn run(
    hub: &Arc<crate::hub::Hub>,
    session: Session,
    (mut disconnect, mut end): (
        tokio::sync::watch::Receiver<u64>,
        tokio::sync::watch::Receiver<u64>,
    ),
    mut events: mpsc::UnboundedReceiver<Outgoing>,
    mut cursor: Option<Cursor>,
    subscription: &[Channel],
    body: &mpsc::Sender<Result<Bytes, io::Error>>,
) -> Result<(), Closed> {
    let Session {
        flavour,
        logged_in,
        heartbeat,
    } = session;
    let mut stall = hub.faults.watch_stall();
    let mut ticks = interval_at(Instant::now() + heartbeat, heartbeat);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut greeted = false;
    loop {
        // A stall fault holds everything, the greeting included.
        let stalled_until = (*stall.borrow_and_update()).filter(|t| *t > Instant::now());
        if let Some(until) = stalled_until {
            tokio::select! {
                _ = disconnect.changed() => return abort(body).await,
                _ = body.closed() => return Err(Closed),
                _ = tokio::time::sleep_until(until) => {}
                _ = stall.changed() => {}
            }
            continue;
        }
        if !greeted {
            send(body, Bytes::from_static(b":)\n")).await?;
            greeted = true;
        }
        tokio::select! {
            biased;
            _ = disconnect.changed() => return abort(body).await,
            // Dropping the sender ends the body with its last chunk.
            _ = end.changed() => return Ok(()),
            _ = body.closed() => return Err(Closed),
            _ = stall.changed() => {}
            _ = ticks.tick() => send(body, Bytes::from_static(flavour.heartbeat())).await?,
            out = events.recv() => match out {
                Some(Outgoing::Event { encoded, stream }) if flavour.drops(&encoded, &stream) => {}
                Some(Outgoing::Event { encoded, stream }) => {
                    let encoded = encoded.for_subscriber(flavour, &stream, logged_in);
                    // Mastodon writes the event line and the data in two writes.
                    send(body, encoded.sse_event_line.clone()).await?;
                    send(body, encoded.sse_data.clone()).await?;
                }
                Some(Outgoing::Raw(bytes)) => send(body, bytes).await?,
                None => return Err(Closed),
            },
            permit = body.reserve(), if cursor.is_some() => {
                let Ok(permit) = permit else { return Err(Closed) };
                match cursor.as_mut().map(|c| next_paced_chunk(c, subscription)) {
                    Some(Some(chunk)) => permit.send(Ok(chunk)),
                    // Nothing in the replay for this stream.
                    _ => cursor = None,
                }
            }
        }
    }
}

/// Up to [`PACED_CHUNK`] bytes of replayed events in one body chunk, so a
/// paced replay costs the server one write per chunk, not two per event.
fn next_paced_chunk(cursor: &mut Cursor, subscription: &[Channel]) -> Option<Bytes> {
    let mut chunk = Vec::with_capacity(PACED_CHUNK + 4096);
    while chunk.len() < PACED_CHUNK {
        let (encoded, _) = cursor.next_for(subscription)?;
        chunk.extend_from_slice(&encoded.sse_event_line);
        chunk.extend_from_slice(&encoded.sse_data);
    }
    Some(Bytes::from(chunk))
}

/// Ends the body with an error: hyper then drops the connection without the
/// final chunk, as a restarting Mastodon does.
async fn abort(body: &mpsc::Sender<Result<Bytes, io::Error>>) -> Result<(), Closed> {
    let _ = body
        .send(Err(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "disconnect fault",
        )))
        .await;
    Err(Closed)
}
