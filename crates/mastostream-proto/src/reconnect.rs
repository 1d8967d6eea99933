//! The reconnect policy, as a plain state machine fed errors and time.
//!
//! [`Reconnector`] decides after each broken connection whether to try again
//! and after how long. It reads no clock and sleeps on nothing: the connection
//! task passes `now` in and does the waiting, so the policy is tested with
//! fake time.

use std::time::{Duration, Instant};

use crate::Error;

/// When to reconnect after a connection breaks.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ReconnectPolicy {
    /// Never: the first break ends the stream (Mastodon.py's default).
    Off,
    /// Always after the same wait (Mastodon.py's `reconnect_async_wait_sec`).
    Fixed(Duration),
    /// Exponential backoff with full jitter: a random wait between zero and
    /// `initial × 2^attempt`, capped at `max`.
    Backoff {
        /// The first wait's upper bound.
        initial: Duration,
        /// The largest wait.
        max: Duration,
    },
}

impl Default for ReconnectPolicy {
    /// Backoff from 0.5 s to 60 s.
    fn default() -> Self {
        ReconnectPolicy::Backoff {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(60),
        }
    }
}

/// What to do after a connection broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Connect again after this wait; `attempt` counts from 1 since the last
    /// stable connection.
    Reconnect {
        /// How long to wait first.
        delay: Duration,
        /// Which attempt this is.
        attempt: u32,
    },
    /// Stop: the error is final, or the policy is [`ReconnectPolicy::Off`].
    GiveUp,
}

/// How long a connection must stay up before the backoff starts over: a server
/// that accepts and then closes at once is not hammered.
pub const DEFAULT_STABLE_AFTER: Duration = Duration::from_secs(30);

/// The reconnect state machine. Call [`on_connected`](Self::on_connected) when
/// a stream opens and [`on_disconnect`](Self::on_disconnect) when it breaks.
#[derive(Debug, Clone)]
pub struct Reconnector {
    policy: ReconnectPolicy,
    stable_after: Duration,
    attempt: u32,
    connected_at: Option<Instant>,
    rng: u64,
}

impl Reconnector {
    /// A reconnector for `policy`; `seed` seeds its jitter (the driver
    /// gives a random one, tests a fixed one).
    pub fn new(policy: ReconnectPolicy, seed: u64) -> Self {
        Reconnector {
            policy,
            stable_after: DEFAULT_STABLE_AFTER,
            attempt: 0,
            connected_at: None,
            rng: seed | 1,
        }
    }

    /// Sets how long a connection must last before the backoff resets.
    pub fn stable_after(mut self, duration: Duration) -> Self {
        self.stable_after = duration;
        self
    }

    /// The policy.
    pub fn policy(&self) -> &ReconnectPolicy {
        &self.policy
    }

    /// A stream opened at `now`.
    pub fn on_connected(&mut self, now: Instant) {
        self.connected_at = Some(now);
    }

    /// A connection attempt or an open stream failed with `error` at `now`.
    pub fn on_disconnect(&mut self, now: Instant, error: &Error) -> Action {
        if let Some(since) = self.connected_at.take()
            && now.saturating_duration_since(since) >= self.stable_after
        {
            self.attempt = 0;
        }
        if !error.is_retryable() || self.policy == ReconnectPolicy::Off {
            return Action::GiveUp;
        }
        self.attempt = self.attempt.saturating_add(1);
        let mut delay = match &self.policy {
            ReconnectPolicy::Off => return Action::GiveUp,
            ReconnectPolicy::Fixed(wait) => *wait,
            ReconnectPolicy::Backoff { initial, max } => {
                let exponent = (self.attempt - 1).min(30);
                let ceiling = initial.saturating_mul(1u32 << exponent).min(*max);
                ceiling.mul_f64(self.next_unit())
            }
        };
        // The server's Retry-After (429, 503) is a floor.
        if let Error::Http {
            retry_after: Some(seconds),
            ..
        } = error
        {
            // Clamped here too: an `Error` can be made by anyone.
            let floor = Duration::from_secs(*seconds).min(crate::server_wait::MAX_SERVER_WAIT);
            delay = delay.max(floor);
        }
        Action::Reconnect {
            delay,
            attempt: self.attempt,
        }
    }

    /// A number in [0, 1) from a xorshift generator: jitter needs no crypto.
    fn next_unit(&mut self) -> f64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn network() -> Error {
        Error::Network {
            message: "reset".into(),
            source: None,
        }
    }

    fn http(status: u16, retry_after: Option<u64>) -> Error {
        Error::Http {
            status,
            message: None,
            retry_after,
        }
    }

    fn delay(action: Action) -> Duration {
        match action {
            Action::Reconnect { delay, .. } => delay,
            Action::GiveUp => panic!("gave up"),
        }
    }

    #[test]
    fn off_gives_up_at_once() {
        let mut r = Reconnector::new(ReconnectPolicy::Off, 1);
        assert_eq!(r.on_disconnect(Instant::now(), &network()), Action::GiveUp);
    }

    #[test]
    fn fixed_waits_the_same() {
        let mut r = Reconnector::new(ReconnectPolicy::Fixed(Duration::from_secs(5)), 1);
        let now = Instant::now();
        for attempt in 1..4 {
            assert_eq!(
                r.on_disconnect(now, &network()),
                Action::Reconnect {
                    delay: Duration::from_secs(5),
                    attempt
                }
            );
        }
    }

    #[test]
    fn refusals_are_never_retried() {
        let now = Instant::now();
        for status in [400, 401, 403, 404] {
            let mut r = Reconnector::new(ReconnectPolicy::default(), 1);
            assert_eq!(
                r.on_disconnect(now, &http(status, None)),
                Action::GiveUp,
                "{status}"
            );
        }
        let mut r = Reconnector::new(ReconnectPolicy::default(), 1);
        assert_eq!(
            r.on_disconnect(now, &Error::malformed("update", "x", "")),
            Action::GiveUp
        );
    }

    #[test]
    fn backoff_grows_with_full_jitter_up_to_the_cap() {
        let policy = ReconnectPolicy::Backoff {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(60),
        };
        let mut r = Reconnector::new(policy, 7);
        let now = Instant::now();
        let mut delays = Vec::new();
        for attempt in 1..=12u32 {
            let d = delay(r.on_disconnect(now, &network()));
            let ceiling = Duration::from_millis(500)
                .saturating_mul(1 << (attempt - 1))
                .min(Duration::from_secs(60));
            assert!(d <= ceiling, "attempt {attempt}: {d:?} > {ceiling:?}");
            delays.push(d);
        }
        // Jitter: not all the same, and late ones use the large range.
        assert!(delays.windows(2).any(|w| w[0] != w[1]));
        assert!(
            delays[8..].iter().any(|d| *d > Duration::from_secs(10)),
            "{delays:?}"
        );
    }

    #[test]
    fn backoff_resets_only_after_a_stable_connection() {
        let policy = ReconnectPolicy::Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(1000),
        };
        let mut r = Reconnector::new(policy, 3).stable_after(Duration::from_secs(30));
        let t0 = Instant::now();
        for expected in 1..=3 {
            // Accepted, then closed at once: the attempt count keeps growing.
            r.on_connected(t0);
            let Action::Reconnect { attempt, .. } =
                r.on_disconnect(t0 + Duration::from_secs(1), &network())
            else {
                panic!()
            };
            assert_eq!(attempt, expected);
        }
        r.on_connected(t0);
        let Action::Reconnect { attempt, .. } =
            r.on_disconnect(t0 + Duration::from_secs(31), &network())
        else {
            panic!()
        };
        assert_eq!(attempt, 1, "a stable connection resets the backoff");
    }

    #[test]
    fn retry_after_is_a_floor() {
        let mut r = Reconnector::new(ReconnectPolicy::Fixed(Duration::from_millis(10)), 1);
        let now = Instant::now();
        assert_eq!(
            delay(r.on_disconnect(now, &http(429, Some(7)))),
            Duration::from_secs(7)
        );
        assert_eq!(
            delay(r.on_disconnect(now, &http(503, None))),
            Duration::from_millis(10)
        );
        // A floor from the wire cannot overflow an instant later on.
        let wait = delay(r.on_disconnect(now, &http(503, Some(u64::MAX))));
        assert_eq!(wait, crate::server_wait::MAX_SERVER_WAIT);
        assert!(now.checked_add(wait).is_some());
    }
}
