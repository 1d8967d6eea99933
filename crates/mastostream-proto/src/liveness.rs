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
pub enum LivenessEvent {
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
        }
    }

    /// Bytes (events or heartbeats) arrived at `now`.
    pub fn handle_bytes(&mut self, now: Instant) {
        self.last_byte = Some(now);
    }

    /// Whether anything at all has arrived.
    pub fn has_received(&self) -> bool {
        self.last_byte.is_some()
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let stall = self
            .stall_timeout
            .map(|t| self.last_byte.unwrap_or(self.opened_at) + t);
        let greeting = self
            .greeting_timeout
            .filter(|_| self.last_byte.is_none() && !self.greeting_reported)
            .map(|t| self.opened_at + t);
        match (stall, greeting) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Checks the deadlines at `now`.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<LivenessEvent> {
        let last = self.last_byte.unwrap_or(self.opened_at);
        if let Some(timeout) = self.stall_timeout
            && now.saturating_duration_since(last) >= timeout
        {
            return Some(LivenessEvent::Stalled {
                silent_for: now.saturating_duration_since(last),
            });
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
}
