//! The control endpoints tests and demos drive the server with.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use crate::faults::{Fault, Reject};
use crate::http;
use crate::publish::Publish;
use crate::state::AppState;

/// `POST /api/testkit/publish` → `{"delivered": N}`.
pub async fn publish(State(state): State<AppState>, body: Bytes) -> Response {
    match Publish::from_json(&body) {
        Ok(publish) => {
            let delivered = state.hub.publish(publish);
            http::json_response(
                StatusCode::OK,
                json!({ "delivered": delivered }).to_string(),
            )
        }
        Err(error) => http::json_error(StatusCode::UNPROCESSABLE_ENTITY, &error),
    }
}

/// `POST /api/testkit/faults` → `{"ok": true, ...}`.
pub async fn fault(State(state): State<AppState>, body: Bytes) -> Response {
    let fault: Fault = match serde_json::from_slice(&body) {
        Ok(fault) => fault,
        Err(error) => {
            return http::json_error(StatusCode::UNPROCESSABLE_ENTITY, &error.to_string());
        }
    };
    match apply(&state, fault) {
        Ok(affected) => http::json_response(
            StatusCode::OK,
            json!({ "ok": true, "affected": affected }).to_string(),
        ),
        Err(error) => http::json_error(StatusCode::UNPROCESSABLE_ENTITY, &error),
    }
}

/// Applies a fault; returns how many open connections it touched.
pub fn apply(state: &AppState, fault: Fault) -> Result<usize, String> {
    let open = state.hub.connections().len();
    match fault {
        Fault::Disconnect => state.hub.faults.disconnect_all(),
        Fault::End => state.hub.faults.end_all(),
        Fault::Stall { seconds } => {
            let duration = Duration::try_from_secs_f64(seconds)
                .map_err(|_| format!("bad stall duration: {seconds}"))?;
            state.hub.faults.stall(duration);
        }
        Fault::Reject {
            status,
            count,
            retry_after,
            headers,
        } => {
            let reject = checked_reject(status, count, retry_after, headers)?;
            state.hub.faults.set_reject(reject);
            return Ok(0);
        }
        Fault::RejectRest {
            status,
            count,
            retry_after,
            headers,
        } => {
            let reject = checked_reject(status, count, retry_after, headers)?;
            state.hub.faults.set_reject_rest(reject);
            return Ok(0);
        }
        Fault::RejectSubscribe {
            status,
            error,
            count,
        } => {
            state.hub.faults.set_reject_subscribe(status, error, count);
            return Ok(0);
        }
        Fault::RefuseList { list } => {
            state.hub.faults.refuse_list(list);
            return Ok(0);
        }
        Fault::Raw { bytes } => return Ok(state.hub.send_raw(bytes.into_bytes().into())),
    }
    Ok(open)
}

/// A rejection of the next `count` requests (none for 0), with a valid status.
fn checked_reject(
    status: u16,
    count: u32,
    retry_after: Option<u64>,
    headers: Vec<(String, String)>,
) -> Result<Option<Reject>, String> {
    if !(100..=599).contains(&status) {
        return Err(format!("bad status: {status}"));
    }
    Ok((count > 0).then_some(Reject {
        status,
        remaining: count,
        retry_after,
        headers,
    }))
}

/// `GET /api/testkit/connections` → `[{"id", "transport", "streams"}]`.
///
/// The `x-testkit-changes` header counts the changes so far (connections
/// opened, closed, subscribed, …). With `?changed_after=N` the answer waits
/// (up to 10 s) until that count has passed N: a test in another process
/// waits on the server's signal instead of asking again and again.
pub async fn connections(
    State(state): State<AppState>,
    Query(query): Query<http::Query>,
) -> Response {
    let mut changes = state.hub.watch_changes();
    if let Some(after) = query
        .get("changed_after")
        .and_then(|v| v.parse::<u64>().ok())
    {
        let _ = tokio::time::timeout(
            Duration::from_secs(10),
            changes.wait_for(|count| *count > after),
        )
        .await;
    }
    let count = *changes.borrow_and_update();
    let list = state.hub.connections();
    let mut response = http::json_response(
        StatusCode::OK,
        serde_json::to_string(&list).unwrap_or_else(|_| "[]".into()),
    );
    response
        .headers_mut()
        .insert("x-testkit-changes", count.into());
    response
}
