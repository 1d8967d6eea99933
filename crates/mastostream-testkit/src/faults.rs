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

/// A pending rejection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reject {
    /// The status to answer with.
    pub status: u16,
    /// Requests still to reject.
    pub remaining: u32,
    /// `Retry-After`, in seconds.
    pub retry_after: Option<u64>,
}

/// The shared fault state every connection watches.
#[derive(Debug)]
pub struct FaultState {
    disconnect: watch::Sender<u64>,
    stall_until: watch::Sender<Option<Instant>>,
    reject: Mutex<Option<Reject>>,
}

impl Default for FaultState {
    fn default() -> Self {
        FaultState {
            disconnect: watch::channel(0).0,
            stall_until: watch::channel(None).0,
            reject: Mutex::new(None),
        }
    }
}

impl FaultState {
    /// Drops every connection open now.
    pub fn disconnect_all(&self) {
        self.disconnect.send_modify(|generation| *generation += 1);
    }

    /// Silences every connection for `duration`.
    pub fn stall(&self, duration: Duration) {
        self.stall_until
            .send_replace(Some(Instant::now() + duration));
    }

    /// Rejects the next requests.
    pub fn set_reject(&self, reject: Reject) {
        *self.reject.lock().unwrap_or_else(|e| e.into_inner()) = Some(reject);
    }

    /// Takes one pending rejection, if any.
    pub fn take_reject(&self) -> Option<Reject> {
        let mut slot = self.reject.lock().unwrap_or_else(|e| e.into_inner());
        let reject = (*slot)?;
        if reject.remaining <= 1 {
            *slot = None;
        } else {
            if let Some(r) = slot.as_mut() {
                r.remaining -= 1;
            }
        }
        Some(reject)
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
