//! The router and the state every handler shares.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::auth::TokenPolicy;
use crate::hub::Hub;
use crate::replay::PreparedReplay;
use crate::{control, rest, sse, ws};

/// The server's settings, fixed at start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Time between SSE heartbeats.
    pub heartbeat: Duration,
    /// Time between WebSocket pings.
    pub ping_interval: Duration,
    /// Which tokens are accepted.
    pub tokens: TokenPolicy,
    /// The streaming URL the instance endpoints advertise, when not this server.
    pub streaming_url: Option<String>,
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// Connections, store and faults.
    pub hub: Arc<Hub>,
    /// Settings.
    pub settings: Arc<Settings>,
    /// A replay streamed to each connection at its own pace (`--rate 0`).
    pub paced_replay: Option<Arc<PreparedReplay>>,
}

/// All routes: streaming, the REST endpoints a streaming client touches, and control.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/streaming/health", get(health))
        .route("/api/v1/streaming/health/", get(health))
        .route("/api/v1/streaming", get(ws::entry))
        .route("/api/v1/streaming/", get(ws::entry))
        .route("/api/v1/streaming/{*path}", get(sse::entry))
        .merge(rest::routes())
        .merge(
            Router::new()
                .route("/api/testkit/publish", post(control::publish))
                .route("/api/testkit/faults", post(control::fault))
                .route("/api/testkit/connections", get(control::connections)),
        )
        .fallback(not_found)
        .with_state(state)
}

async fn health() -> Response {
    let mut response = plain(StatusCode::OK, "OK");
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    response
}

async fn not_found() -> Response {
    json_error(StatusCode::NOT_FOUND, "Record not found")
}

/// A text/plain response.
pub fn plain(status: StatusCode, text: &'static str) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}

/// Mastodon's error shape: `{"error": "..."}`.
pub fn json_error(status: StatusCode, message: &str) -> Response {
    json_response(status, serde_json::json!({ "error": message }).to_string())
}

/// A JSON response from already-encoded text.
pub fn json_response(status: StatusCode, json: String) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
        .body(Body::from(json))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// The first value of each query parameter, percent-decoded.
pub type Query = HashMap<String, String>;
