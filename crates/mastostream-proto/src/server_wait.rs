//! How long a server asks us to wait, read from its headers and clamped.
//!
//! `Retry-After` and `X-RateLimit-Reset` come from the network, so they can
//! say anything: 2^63 seconds overflowed `Instant + delay` once. Every wait
//! read here is clamped to [`MAX_SERVER_WAIT`], and a value that is not a
//! number or a date counts as not given.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::timestamp::{days_from_civil, parse_timestamp};

/// The longest wait a server can impose through its headers: one hour.
/// Longer asks are taken as this; the reconnect policy's own waits add to
/// nothing beyond it either.
pub const MAX_SERVER_WAIT: Duration = Duration::from_secs(3600);

/// A `Retry-After` value (RFC 9110: delay seconds, or an HTTP date) as a
/// wait from `now`, clamped to [`MAX_SERVER_WAIT`]; a date in the past is
/// no wait. `None` when it is neither.
pub fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // More digits than u64 holds is still "a very long time".
        let seconds = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(seconds).min(MAX_SERVER_WAIT));
    }
    let at = parse_http_date(value)?;
    Some(until(at, now))
}

/// An `X-RateLimit-Reset` value (Mastodon writes an ISO 8601 time) as a
/// wait from `now`, clamped to [`MAX_SERVER_WAIT`].
pub fn rate_limit_reset(value: &str, now: SystemTime) -> Option<Duration> {
    Some(until(parse_timestamp(value)?, now))
}

/// The wait from `now` to `at`, none if it is past, at most the maximum.
fn until(at: SystemTime, now: SystemTime) -> Duration {
    at.duration_since(now)
        .unwrap_or_default()
        .min(MAX_SERVER_WAIT)
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the HTTP date form
/// servers send; the obsolete forms count as not a date.
pub fn parse_http_date(text: &str) -> Option<SystemTime> {
    let mut parts = text.split_ascii_whitespace();
    let weekday = parts.next()?;
    if !weekday.ends_with(',') {
        return None;
    }
    let day: i64 = digits(parts.next()?, 2)?;
    let month = match parts.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: i64 = digits(parts.next()?, 4)?;
    let mut clock = parts.next()?.split(':');
    let hour: i64 = digits(clock.next()?, 2)?;
    let minute: i64 = digits(clock.next()?, 2)?;
    let second: i64 = digits(clock.next()?, 2)?;
    if clock.next().is_some() || parts.next()? != "GMT" || parts.next().is_some() {
        return None;
    }
    if !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 || year < 1970 {
        return None;
    }
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
    Some(UNIX_EPOCH + Duration::from_secs(u64::try_from(seconds).ok()?))
}

/// Exactly `len` ASCII digits.
fn digits(text: &str, len: usize) -> Option<i64> {
    (text.len() == len && text.bytes().all(|b| b.is_ascii_digit())).then(|| text.parse().ok())?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn seconds_and_dates_become_clamped_waits() {
        let now = at(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            retry_after("9223372036854775807", now),
            Some(MAX_SERVER_WAIT)
        );
        assert_eq!(
            retry_after("99999999999999999999999999", now),
            Some(MAX_SERVER_WAIT)
        );
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:50:37 GMT", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now),
            Some(MAX_SERVER_WAIT)
        );
    }

    #[test]
    fn garbage_is_no_wait_at_all() {
        let now = at(0);
        for bad in [
            "",
            "-5",
            "1.5",
            "soon",
            "0x10",
            "+3",
            "Sun, 06 Nov 1994",
            "Sun 06 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37 PST",
            "Sun, 32 Nov 1994 08:49:37 GMT",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 25:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37 GMT extra",
            "\u{0}",
        ] {
            assert_eq!(retry_after(bad, now), None, "{bad:?}");
        }
    }

    #[test]
    fn a_rate_limit_reset_is_a_clamped_wait() {
        let now = at(1_795_863_590);
        assert_eq!(
            rate_limit_reset("2026-11-28T11:00:00.000Z", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            rate_limit_reset("2020-01-01T00:00:00Z", now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            rate_limit_reset("9999-12-31T23:59:59Z", now),
            Some(MAX_SERVER_WAIT)
        );
        assert_eq!(rate_limit_reset("-1", now), None);
    }

    proptest::proptest! {
        #[test]
        fn any_header_text_gives_a_wait_within_the_bound(text in "\\PC{0,40}", now in 0u64..4_000_000_000) {
            for wait in [retry_after(&text, at(now)), rate_limit_reset(&text, at(now))].into_iter().flatten() {
                proptest::prop_assert!(wait <= MAX_SERVER_WAIT);
            }
        }
    }
}
