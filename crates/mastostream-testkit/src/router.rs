//! The router: every route and the handler behind it.

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};

use crate::http::{json_error, plain};
use crate::state::AppState;
use crate::traffic::RequestInfo;
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
        .layer(axum::middleware::map_request(host_from_authority))
        .layer(axum::middleware::map_request_with_state(
            state.clone(),
            record_request,
        ))
        .with_state(state)
}

/// HTTP/2 carries the host in the `:authority` pseudo-header, not `Host`:
/// give the handlers a `Host` either way.
async fn host_from_authority(mut request: axum::extract::Request) -> axum::extract::Request {
    if !request.headers().contains_key(header::HOST)
        && let Some(value) = request
            .uri()
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    {
        request.headers_mut().insert(header::HOST, value);
    }
    request
}

/// Notes the request's method, path and HTTP version (see traffic.rs).
async fn record_request(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: axum::extract::Request,
) -> axum::extract::Request {
    state.hub.traffic.request(RequestInfo {
        method: request.method().to_string(),
        path: request.uri().path().to_owned(),
        http_version: format!("{:?}", request.version()),
    });
    request
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
