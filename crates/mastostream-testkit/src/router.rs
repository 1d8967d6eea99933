//! The router: every route and the handler behind it.

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};

use crate::http::{json_error, plain};
use crate::state::AppState;
use crate::{control, rest, sse, ws};

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
