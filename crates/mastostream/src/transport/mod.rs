//! The tokio drivers: HTTP for SSE and REST, and the task that keeps a stream
//! connected. They add sockets and time to the sans-IO [`crate::proto`] core.

pub(crate) mod backlog;
pub(crate) mod batch;
pub(crate) mod catch_up;
pub(crate) mod http;
pub(crate) mod mux;
pub(crate) mod sse;
pub(crate) mod task;
pub(crate) mod ws;

/// Sleeps until a liveness deadline, or forever when there is none.
pub(crate) async fn sleep_until_or_never(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
