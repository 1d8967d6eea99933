//! What reached the server at the HTTP level: TCP connections accepted and
//! the requests made on them, with their HTTP version. Tests read it to see
//! how a client used the network (HTTP/2 on one connection, say).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// The requests kept: the oldest are forgotten past this many, so a long
/// benchmark run does not grow the server.
const KEPT_REQUESTS: usize = 4096;

/// One request as it arrived (the path without its query: a query may hold
/// a token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestInfo {
    /// `GET`, `POST`, …
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// `HTTP/1.1`, `HTTP/2.0`, …
    pub http_version: String,
}

/// The server's counters.
#[derive(Debug, Default)]
pub struct Traffic {
    tcp_accepted: AtomicU64,
    requests: Mutex<VecDeque<RequestInfo>>,
}

impl Traffic {
    /// Counts a TCP connection accepted (for TLS: once its handshake is done).
    pub fn connection_accepted(&self) {
        self.tcp_accepted.fetch_add(1, Ordering::Relaxed);
    }

    /// TCP connections accepted so far.
    pub fn connections_accepted(&self) -> u64 {
        self.tcp_accepted.load(Ordering::Relaxed)
    }

    /// Records a request.
    pub fn request(&self, info: RequestInfo) {
        let mut requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        if requests.len() == KEPT_REQUESTS {
            requests.pop_front();
        }
        requests.push_back(info);
    }

    /// The requests recorded, oldest first.
    pub fn requests(&self) -> Vec<RequestInfo> {
        let requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        requests.iter().cloned().collect()
    }
}
