//! Faults a test can inject into the streaming side.

use std::sync::Mutex;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::watch;
use tokio::time::Instant;

/// A fault, as `POST /api/testkit/faults` takes it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
#[non_exhaustive]
pub enum Fault {
    /// Drop every streaming connection now, like a server restart: no final
    /// chunk on SSE, no close frame on WebSocket.
    Disconnect,
    /// End every SSE response normally, with its last chunk, as a server or
    /// proxy that closes the response does (WebSocket connections are left
    /// alone). A client sees the stream end, not break.
    End,
    /// Send nothing at all (events, heartbeats, pings) for a while.
    Stall {
        /// How long, in seconds (fractions allowed).
        seconds: f64,
    },
    /// Answer the next `count` streaming requests with `status`.
    Reject {
        /// The HTTP status.
        status: u16,
        /// How many requests.
        #[serde(default = "one")]
        count: u32,
        /// A `Retry-After` value in seconds, if any.
        #[serde(default)]
        retry_after: Option<u64>,
        /// More headers to answer with, as given (names and values are
        /// not checked beyond what HTTP allows), for hostile-header tests:
        /// `[["retry-after", "Sun, 06 Nov 1994 08:49:37 GMT"]]`.
        #[serde(default)]
        headers: Vec<(String, String)>,
    },
    /// Answer the next `count` REST timeline requests with `status` (as a
    /// rate-limited or failing Mastodon would, for catch-up tests).
    #[serde(rename = "reject_rest")]
    RejectRest {
        /// The HTTP status.
        status: u16,
        /// How many requests.
        #[serde(default = "one")]
        count: u32,
        /// A `Retry-After` value in seconds, if any.
        #[serde(default)]
        retry_after: Option<u64>,
        /// More headers to answer with, as given (names and values are
        /// not checked beyond what HTTP allows), for hostile-header tests:
        /// `[["retry-after", "Sun, 06 Nov 1994 08:49:37 GMT"]]`.
        #[serde(default)]
        headers: Vec<(String, String)>,
    },
    /// Answer the next `count` WebSocket subscribe frames with an error frame
    /// `{"error": error, "status": status}` instead of subscribing (as
    /// Mastodon does for a token without the needed scope).
    #[serde(rename = "reject_subscribe")]
    RejectSubscribe {
        /// The status in the error frame.
        #[serde(default = "forbidden_status")]
        status: u16,
        /// The error text.
        #[serde(default = "scope_error")]
        error: String,
        /// How many subscribe frames.
        #[serde(default = "one")]
        count: u32,
    },
    /// Take list `list` for one the token's user does not own, as
    /// Mastodon's streaming server finds after its database lookup
    /// (mastodon/mastodon, streaming/index.js, `channelNameToIds`: "Not
    /// authorized to stream this list", 401). Over SSE the request is
    /// refused; over the WebSocket the error frame comes only after a
    /// moment, so that the answers to subscribes sent after it overtake it,
    /// as the lookup makes them do on a real server.
    #[serde(rename = "refuse_list")]
    RefuseList {
        /// The list id.
        list: String,
    },
    /// Write these bytes, as they are, to every SSE connection.
    Raw {
        /// The bytes, as a string (JSON escapes allow any text).
        bytes: String,
    },
}

fn one() -> u32 {
    1
}

fn forbidden_status() -> u16 {
    401
}

fn scope_error() -> String {
    "Access token does not have the required scopes".to_owned()
}

/// A pending rejection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    /// The status to answer with.
    pub status: u16,
    /// Requests still to reject.
    pub remaining: u32,
    /// `Retry-After`, in seconds.
    pub retry_after: Option<u64>,
    /// More headers, as given.
    pub headers: Vec<(String, String)>,
}

/// The shared fault state every connection watches.
#[derive(Debug)]
pub struct FaultState {
    disconnect: watch::Sender<u64>,
    stall_until: watch::Sender<Option<Instant>>,
    end: watch::Sender<u64>,
    reject: Mutex<Option<Reject>>,
    reject_rest: Mutex<Option<Reject>>,
    reject_subscribe: Mutex<Option<(u16, String, u32)>>,
    foreign_lists: Mutex<std::collections::HashSet<String>>,
}

impl Default for FaultState {
    fn default() -> Self {
        FaultState {
            disconnect: watch::channel(0).0,
            stall_until: watch::channel(None).0,
            end: watch::channel(0).0,
            reject: Mutex::new(None),
            reject_rest: Mutex::new(None),
            reject_subscribe: Mutex::new(None),
            foreign_lists: Mutex::default(),
        }
    }
}

impl FaultState {
    /// Drops every connection open now.
    pub fn disconnect_all(&self) {
        self.disconnect.send_modify(|generation| *generation += 1);
    }

    /// Ends every SSE response open now, normally.
    pub fn end_all(&self) {
        self.end.send_modify(|generation| *generation += 1);
    }

    /// A receiver that changes when SSE responses are to end.
    pub fn watch_end(&self) -> watch::Receiver<u64> {
        self.end.subscribe()
    }

    /// Silences every connection for `duration`.
    pub fn stall(&self, duration: Duration) {
        self.stall_until
            .send_replace(Some(Instant::now() + duration));
    }

    /// Rejects the next streaming requests (`None` clears a pending rejection).
    pub fn set_reject(&self, reject: Option<Reject>) {
        *self.reject.lock().unwrap_or_else(|e| e.into_inner()) = reject;
    }

    /// Takes one pending rejection of a streaming request, if any.
    pub fn take_reject(&self) -> Option<Reject> {
        take(&self.reject)
    }

    /// Rejects the next REST timeline requests (`None` clears a pending rejection).
    pub fn set_reject_rest(&self, reject: Option<Reject>) {
        *self.reject_rest.lock().unwrap_or_else(|e| e.into_inner()) = reject;
    }

    /// Takes one pending rejection of a REST request, if any.
    pub fn take_reject_rest(&self) -> Option<Reject> {
        take(&self.reject_rest)
    }

    /// Refuses the next `count` subscribe frames.
    pub fn set_reject_subscribe(&self, status: u16, error: String, count: u32) {
        *self
            .reject_subscribe
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = (count > 0).then_some((status, error, count));
    }

    /// Takes list `list` for someone else's from now on.
    pub fn refuse_list(&self, list: String) {
        self.foreign_lists
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(list);
    }

    /// Whether list `list` is someone else's.
    pub fn is_foreign_list(&self, list: &str) -> bool {
        self.foreign_lists
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(list)
    }

    /// Takes one pending subscribe refusal, if any.
    pub fn take_reject_subscribe(&self) -> Option<(u16, String)> {
        let mut slot = self
            .reject_subscribe
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let (status, error, count) = slot.take()?;
        if count > 1 {
            *slot = Some((status, error.clone(), count - 1));
        }
        Some((status, error))
    }

    /// A receiver that changes when a disconnect fault is injected.
    pub fn watch_disconnect(&self) -> watch::Receiver<u64> {
        self.disconnect.subscribe()
    }

    /// A receiver for the end of the current stall.
    pub fn watch_stall(&self) -> watch::Receiver<Option<Instant>> {
        self.stall_until.subscribe()
    }
}

/// Takes one rejection from `slot`, counting it down.
fn take(slot: &Mutex<Option<Reject>>) -> Option<Reject> {
    let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
    let reject = slot.clone()?;
    if reject.remaining <= 1 {
        *slot = None;
    } else if let Some(r) = slot.as_mut() {
        r.remaining -= 1;
    }
    Some(reject)
}
