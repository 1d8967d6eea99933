//! Stall detection from heartbeats, as a plain state machine fed time.
//!
//! Mastodon writes `:thump` every 15 seconds, so a stream that delivers no
//! byte at all for a few intervals is dead even if TCP has not noticed.
//! [`Liveness`] is told when bytes arrive and asked when the next deadline
//! is; the connection task does the waiting.

use std::time::{Duration, Instant};

/// The default stall timeout: three of Mastodon's 15-second heartbeats.
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(45);

/// How long after a 200 the first heartbeat may take before we suspect a
/// buffering proxy: Mastodon writes `:)` at once.
pub const DEFAULT_GREETING_TIMEOUT: Duration = Duration::from_secs(20);

/// What a deadline found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LivenessEvent {
    /// Silent for half the stall timeout, with probing on: send the server
    /// something that it must answer (a WebSocket ping), so that a quiet
    /// but healthy connection is not taken for dead.
    Probe,
    /// No byte at all for the stall timeout: the connection is dead.
    Stalled {
        /// How long it was silent.
        silent_for: Duration,
    },
    /// The response opened but nothing came yet — often a buffering proxy.
    NoGreeting {
        /// How long since the response opened.
        waited: Duration,
    },
}

/// Tracks one open stream's liveness.
#[derive(Debug, Clone)]
pub struct Liveness {
    stall_timeout: Option<Duration>,
    greeting_timeout: Option<Duration>,
    opened_at: Instant,
    last_byte: Option<Instant>,
    greeting_reported: bool,
    probe: bool,
    probed: bool,
}

impl Liveness {
    /// A stream that opened at `now`. `stall_timeout` `None` turns stall
    /// detection off; `greeting_timeout` `None` expects no greeting (WebSocket).
    pub fn new(
        now: Instant,
        stall_timeout: Option<Duration>,
        greeting_timeout: Option<Duration>,
    ) -> Self {
        Liveness {
            stall_timeout,
            greeting_timeout,
            opened_at: now,
            last_byte: None,
            greeting_reported: false,
            probe: false,
            probed: false,
        }
    }

    /// Probes the peer at half the stall timeout of silence
    /// ([`LivenessEvent::Probe`]), so the timeout can be shorter than the
    /// server's own heartbeat interval.
    pub fn with_probe(mut self) -> Self {
        self.probe = true;
        self
    }

    /// Bytes (events or heartbeats) arrived at `now`.
    pub fn handle_bytes(&mut self, now: Instant) {
        self.last_byte = Some(now);
        self.probed = false;
    }

    /// Whether anything at all has arrived.
    pub fn has_received(&self) -> bool {
        self.last_byte.is_some()
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next, if ever.
    /// (A timeout too long for the clock is no deadline.)
    pub fn poll_timeout(&self) -> Option<Instant> {
        let last = self.last_byte.unwrap_or(self.opened_at);
        let stall = self.stall_timeout.and_then(|t| {
            if self.probe && !self.probed {
                last.checked_add(t / 2)
            } else {
                last.checked_add(t)
            }
        });
        let greeting = self
            .greeting_timeout
            .filter(|_| self.last_byte.is_none() && !self.greeting_reported)
            .and_then(|t| self.opened_at.checked_add(t));
        match (stall, greeting) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Checks the deadlines at `now`.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<LivenessEvent> {
        let last = self.last_byte.unwrap_or(self.opened_at);
        let silent_for = now.saturating_duration_since(last);
        if let Some(timeout) = self.stall_timeout {
            if silent_for >= timeout {
                return Some(LivenessEvent::Stalled { silent_for });
            }
            if self.probe && !self.probed && silent_for >= timeout / 2 {
                self.probed = true;
                return Some(LivenessEvent::Probe);
            }
        }
        if let Some(greeting_timeout) = self.greeting_timeout
            && self.last_byte.is_none()
            && !self.greeting_reported
            && now.saturating_duration_since(self.opened_at) >= greeting_timeout
        {
            self.greeting_reported = true;
            return Some(LivenessEvent::NoGreeting {
                waited: now.saturating_duration_since(self.opened_at),
            });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn heartbeats_keep_it_alive_and_silence_stalls() {
        let t0 = Instant::now();
        let mut l = Liveness::new(t0, Some(45 * S), Some(20 * S));
        l.handle_bytes(t0);
        for i in 1..10 {
            let now = t0 + 15 * S * i;
            assert_eq!(l.handle_timeout(now), None);
            l.handle_bytes(now);
        }
        let last = t0 + 15 * S * 9;
        assert_eq!(l.poll_timeout(), Some(last + 45 * S));
        assert_eq!(l.handle_timeout(last + 44 * S), None);
        assert_eq!(
            l.handle_timeout(last + 45 * S),
            Some(LivenessEvent::Stalled { silent_for: 45 * S })
        );
    }

    #[test]
    fn no_greeting_is_reported_once() {
        let t0 = Instant::now();
        let mut l = Liveness::new(t0, Some(45 * S), Some(20 * S));
        assert_eq!(l.poll_timeout(), Some(t0 + 20 * S));
        assert_eq!(
            l.handle_timeout(t0 + 20 * S),
            Some(LivenessEvent::NoGreeting { waited: 20 * S })
        );
        assert_eq!(l.handle_timeout(t0 + 21 * S), None);
        assert_eq!(l.poll_timeout(), Some(t0 + 45 * S));
        assert!(matches!(
            l.handle_timeout(t0 + 45 * S),
            Some(LivenessEvent::Stalled { .. })
        ));
    }

    #[test]
    fn off_means_no_stall_deadline() {
        let t0 = Instant::now();
        let mut l = Liveness::new(t0, None, Some(20 * S));
        l.handle_bytes(t0);
        assert_eq!(l.poll_timeout(), None);
        assert_eq!(l.handle_timeout(t0 + 1000 * S), None);
    }

    #[test]
    fn a_probe_comes_at_half_the_timeout_and_an_answer_resets_it() {
        let t0 = Instant::now();
        let mut l = Liveness::new(t0, Some(4 * S), None).with_probe();
        assert_eq!(l.poll_timeout(), Some(t0 + 2 * S));
        assert_eq!(l.handle_timeout(t0 + 2 * S), Some(LivenessEvent::Probe));
        assert_eq!(l.poll_timeout(), Some(t0 + 4 * S));
        // The pong.
        l.handle_bytes(t0 + 3 * S);
        assert_eq!(l.poll_timeout(), Some(t0 + 5 * S));
        assert_eq!(l.handle_timeout(t0 + 5 * S), Some(LivenessEvent::Probe));
        assert_eq!(
            l.handle_timeout(t0 + 7 * S),
            Some(LivenessEvent::Stalled { silent_for: 4 * S })
        );
    }

    #[test]
    fn a_timeout_past_the_clock_is_no_deadline() {
        let t0 = Instant::now();
        let l = Liveness::new(t0, Some(Duration::MAX), Some(Duration::MAX));
        assert_eq!(l.poll_timeout(), None);
    }
}
