//! The tokio drivers: HTTP for SSE and REST, and the task that keeps a stream
//! connected. They add sockets and time to the sans-IO [`crate::proto`] core.

pub(crate) mod catch_up;
pub(crate) mod http;
pub(crate) mod mux;
pub(crate) mod sse;
pub(crate) mod task;
pub(crate) mod ws;
