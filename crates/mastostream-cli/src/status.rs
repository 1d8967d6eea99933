//! The status line's model: where each stream stands, what has arrived, and
//! the one line of text that says so.
//!
//! Nothing here reads a clock or knows the library's types: the caller passes
//! `now` and tells the board what happened, so the text can be tested exactly.

use std::time::{Duration, Instant};

/// How long a note such as "caught up 12 events after a gap" stays on the line.
const NOTE_FOR: Duration = Duration::from_secs(20);

/// The rate is counted over this many most recent seconds: long enough to be
/// steady, short enough to show a stream that has gone quiet.
const RATE_WINDOW: u64 = 10;

/// Where one stream's connection stands, as the status line tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamStatus {
    /// Opening the connection.
    Connecting,
    /// Connected; nothing to say.
    Open,
    /// Broken; the next attempt starts at `until`.
    Reconnecting { until: Instant, reason: String },
    /// Ended for good.
    Closed,
}

/// What catch-up gave back after the last gap, and when it was reported.
#[derive(Debug, Clone, Copy)]
struct CaughtUp {
    events: u64,
    complete: bool,
    at: Instant,
}

#[derive(Debug)]
struct Track {
    name: String,
    status: StreamStatus,
    /// Caught-up events since the last gap report.
    pending: u64,
    last_gap: Option<CaughtUp>,
    /// The last sign of life: an event, a heartbeat, a WebSocket ping, or
    /// the connection opening.
    alive_at: Instant,
}

/// Events per second over the last [`RATE_WINDOW`] seconds, in one bucket
/// per second, so that a fast stream costs no memory.
#[derive(Debug)]
struct Rate {
    start: Instant,
    /// (second since `start`, events in it), indexed by the second modulo the window.
    buckets: [(u64, u64); RATE_WINDOW as usize],
}

impl Rate {
    fn new(start: Instant) -> Rate {
        Rate {
            start,
            buckets: [(u64::MAX, 0); RATE_WINDOW as usize],
        }
    }

    fn handle_event(&mut self, now: Instant) {
        let second = now.saturating_duration_since(self.start).as_secs();
        let bucket = &mut self.buckets[(second % RATE_WINDOW) as usize];
        if bucket.0 != second {
            *bucket = (second, 0);
        }
        bucket.1 += 1;
    }

    fn per_second(&self, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.start);
        let second = elapsed.as_secs();
        let events: u64 = self
            .buckets
            .iter()
            .filter(|(s, _)| *s <= second && *s + RATE_WINDOW > second)
            .map(|(_, n)| n)
            .sum();
        // The window holds the whole past seconds and the current one so far;
        // under a second, a couple of events would read as a silly burst.
        let fraction = elapsed.as_secs_f64() - second as f64;
        let covered = elapsed
            .as_secs_f64()
            .min((RATE_WINDOW - 1) as f64 + fraction);
        events as f64 / covered.max(1.0)
    }
}

/// Every stream's status and the counters, rendered as one line.
#[derive(Debug)]
pub struct Board {
    tracks: Vec<Track>,
    total: u64,
    rate: Rate,
    /// An open stream with no sign of life for this long is said to be silent.
    silent_after: Duration,
}

impl Board {
    /// A board for these streams (by the names people typed), all connecting;
    /// an open one quiet for `silent_after` is told as silent.
    pub fn new(
        names: impl IntoIterator<Item = String>,
        silent_after: Duration,
        now: Instant,
    ) -> Board {
        Board {
            tracks: names
                .into_iter()
                .map(|name| Track {
                    name,
                    status: StreamStatus::Connecting,
                    pending: 0,
                    last_gap: None,
                    alive_at: now,
                })
                .collect(),
            total: 0,
            rate: Rate::new(now),
            silent_after,
        }
    }

    /// Stream `index` is now in `status`.
    pub fn set_status(&mut self, index: usize, status: StreamStatus, now: Instant) {
        if let Some(track) = self.tracks.get_mut(index) {
            if status == StreamStatus::Open {
                track.alive_at = now;
            }
            track.status = status;
        }
    }

    /// Stream `index` delivered an event; `caught_up` when catch-up fetched it.
    pub fn handle_event(&mut self, index: usize, caught_up: bool, now: Instant) {
        self.total += 1;
        self.rate.handle_event(now);
        if let Some(track) = self.tracks.get_mut(index) {
            track.alive_at = now;
            track.pending += u64::from(caught_up);
        }
    }

    /// Stream `index` showed it is alive without an event (a heartbeat, a
    /// WebSocket ping or pong).
    pub fn handle_heartbeat(&mut self, index: usize, now: Instant) {
        if let Some(track) = self.tracks.get_mut(index) {
            track.alive_at = now;
        }
    }

    /// Stream `index` reported a gap: what it caught up since the last one is
    /// said for a while.
    pub fn handle_gap(&mut self, index: usize, complete: bool, now: Instant) {
        if let Some(track) = self.tracks.get_mut(index) {
            track.last_gap = Some(CaughtUp {
                events: std::mem::take(&mut track.pending),
                complete,
                at: now,
            });
        }
    }

    /// Events delivered so far.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The status line at `now`: first what is wrong, then the counts.
    pub fn render(&self, now: Instant) -> String {
        // Streams in the same plight are told together: after a server
        // restart every stream reconnects for the same reason.
        let mut plights: Vec<(String, Vec<&str>)> = Vec::new();
        for track in &self.tracks {
            let Some(what) = track.plight(now, self.silent_after) else {
                continue;
            };
            match plights.iter_mut().find(|(w, _)| *w == what) {
                Some((_, names)) => names.push(&track.name),
                None => plights.push((what, vec![&track.name])),
            }
        }
        let mut parts: Vec<String> = plights
            .into_iter()
            .map(|(what, names)| match names.len() {
                1 | 2 => format!("{}: {what}", names.join(", ")),
                n => format!("{n} streams: {what}"),
            })
            .collect();
        let streams = self.tracks.len();
        parts.push(format!(
            "{} stream{}",
            thousands(streams as u64),
            if streams == 1 { "" } else { "s" }
        ));
        parts.push(format!("{} events/s", rate(self.rate.per_second(now))));
        parts.push(format!("{} total", thousands(self.total)));
        parts.join(" · ")
    }
}

impl Track {
    /// What is worth saying about this stream at `now`, if anything.
    fn plight(&self, now: Instant, silent_after: Duration) -> Option<String> {
        Some(match &self.status {
            StreamStatus::Connecting => "connecting".to_owned(),
            StreamStatus::Closed => "closed".to_owned(),
            StreamStatus::Reconnecting { until, reason } => {
                let wait = until.saturating_duration_since(now);
                if wait.is_zero() {
                    format!("reconnecting ({reason})")
                } else {
                    format!(
                        "reconnecting in {} ({reason})",
                        rounded_duration(ceil_seconds(wait))
                    )
                }
            }
            StreamStatus::Open if now.saturating_duration_since(self.alive_at) >= silent_after => {
                format!(
                    "no heartbeat for {}",
                    rounded_duration(now.saturating_duration_since(self.alive_at))
                )
            }
            StreamStatus::Open => {
                let gap = self.last_gap?;
                if now.saturating_duration_since(gap.at) >= NOTE_FOR {
                    return None;
                }
                let missing = if gap.complete {
                    ""
                } else {
                    " (some may be missing)"
                };
                match gap.events {
                    0 => format!("nothing missed in a gap{missing}"),
                    1 => format!("caught up 1 event after a gap{missing}"),
                    n => format!("caught up {} events after a gap{missing}", thousands(n)),
                }
            }
        })
    }
}

/// `1,204`: digits in groups of three, as people read counts.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// A rate: one decimal while it is small, whole numbers once the decimal is noise.
fn rate(per_second: f64) -> String {
    if per_second < 100.0 {
        format!("{per_second:.1}")
    } else {
        thousands(per_second.round() as u64)
    }
}

/// A duration as a status line says it: `3 s`, `2 min`, `1 h 5 min`,
/// rounded to the nearest unit shown (the log lines say it exactly, with
/// `mastostream_proto::human_duration`).
pub fn rounded_duration(d: Duration) -> String {
    let seconds = d.as_secs_f64().round() as u64;
    if seconds < 60 {
        return format!("{seconds} s");
    }
    let minutes = (seconds + 30) / 60;
    if minutes < 60 {
        return format!("{minutes} min");
    }
    match (minutes / 60, minutes % 60) {
        (hours, 0) => format!("{hours} h"),
        (hours, minutes) => format!("{hours} h {minutes} min"),
    }
}

/// `HTTP 503 Service Unavailable`: the status with its standard phrase, and
/// the server's own words when they say something else.
pub fn http_reason(status: u16, message: Option<&str>) -> String {
    let phrase = mastostream_proto::reason_phrase(status).unwrap_or("");
    let mut text = format!("HTTP {status}");
    if !phrase.is_empty() {
        text.push(' ');
        text.push_str(phrase);
    }
    match message.map(str::trim) {
        Some(message) if !message.is_empty() && !message.eq_ignore_ascii_case(phrase) => {
            text.push_str(": ");
            text.push_str(&crate::screen::fit(message, 60));
        }
        _ => {}
    }
    text
}

/// Rounds a wait up, so that a countdown says "in 1 s" until it is over
/// rather than "in 0 s" for its last half second.
fn ceil_seconds(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs() + u64::from(d.subsec_nanos() > 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn board(names: &[&str], start: Instant) -> Board {
        Board::new(names.iter().map(|n| n.to_string()), 25 * S, start)
    }

    #[test]
    fn counts_with_thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_204), "1,204");
        assert_eq!(thousands(12_345_678), "12,345,678");
    }

    #[test]
    fn http_statuses_with_their_phrase() {
        assert_eq!(
            http_reason(503, Some("Service Unavailable")),
            "HTTP 503 Service Unavailable"
        );
        assert_eq!(
            http_reason(429, Some("Throttled")),
            "HTTP 429 Too Many Requests: Throttled"
        );
        assert_eq!(http_reason(599, None), "HTTP 599");
    }

    #[test]
    fn durations_for_people() {
        assert_eq!(rounded_duration(Duration::from_millis(45_001)), "45 s");
        assert_eq!(rounded_duration(Duration::from_millis(400)), "0 s");
        assert_eq!(rounded_duration(59 * S), "59 s");
        assert_eq!(rounded_duration(90 * S), "2 min");
        assert_eq!(rounded_duration(119 * S), "2 min");
        assert_eq!(rounded_duration(3600 * S), "1 h");
        assert_eq!(rounded_duration(3900 * S), "1 h 5 min");
    }

    #[test]
    fn all_open_says_counts_only() {
        let start = Instant::now();
        let mut board = board(&["public", "user", "hashtag=rust"], start);
        for i in 0..3 {
            board.set_status(i, StreamStatus::Open, start);
        }
        for _ in 0..37 {
            board.handle_event(0, false, start + 2 * S);
        }
        // 37 events over the (almost) 10 s the window has seen.
        assert_eq!(
            board.render(start + Duration::from_millis(9_999)),
            "3 streams · 3.7 events/s · 37 total"
        );
    }

    #[test]
    fn one_stream_and_large_totals() {
        let start = Instant::now();
        let mut board = board(&["public"], start);
        board.set_status(0, StreamStatus::Open, start);
        for _ in 0..1_204 {
            board.handle_event(0, false, start + S / 2);
        }
        // Under a second in, the rate is spread over a whole second.
        assert_eq!(
            board.render(start + S / 2),
            "1 stream · 1,204 events/s · 1,204 total"
        );
    }

    #[test]
    fn the_rate_forgets_old_seconds() {
        let start = Instant::now();
        let mut board = board(&["public"], start);
        board.set_status(0, StreamStatus::Open, start);
        for _ in 0..50 {
            board.handle_event(0, false, start + S);
        }
        assert_eq!(
            board.render(start + 5 * S),
            "1 stream · 10.0 events/s · 50 total"
        );
        // Alive, but quiet for longer than the window.
        board.handle_heartbeat(0, start + 29 * S);
        assert_eq!(
            board.render(start + 30 * S),
            "1 stream · 0.0 events/s · 50 total"
        );
        board.handle_event(0, false, start + 31 * S);
        assert!(board.render(start + 31 * S).contains("0.1 events/s"));
    }

    #[test]
    fn connecting_and_closed_streams_are_named_or_counted() {
        let start = Instant::now();
        let board1 = board(&["public"], start);
        assert_eq!(
            board1.render(start),
            "public: connecting · 1 stream · 0.0 events/s · 0 total"
        );
        let mut board3 = board(&["public", "user", "direct"], start);
        assert_eq!(
            board3.render(start),
            "3 streams: connecting · 3 streams · 0.0 events/s · 0 total"
        );
        board3.set_status(1, StreamStatus::Closed, start);
        assert_eq!(
            board3.render(start),
            "public, direct: connecting · user: closed · 3 streams · 0.0 events/s · 0 total"
        );
    }

    #[test]
    fn reconnecting_counts_down_in_whole_seconds() {
        let start = Instant::now();
        let mut board = board(&["public"], start);
        board.set_status(
            0,
            StreamStatus::Reconnecting {
                until: start + Duration::from_millis(2_500),
                reason: "HTTP 503 Service Unavailable".into(),
            },
            start,
        );
        assert_eq!(
            board.render(start),
            "public: reconnecting in 3 s (HTTP 503 Service Unavailable) · 1 stream · 0.0 events/s · 0 total"
        );
        assert!(
            board
                .render(start + 2 * S)
                .starts_with("public: reconnecting in 1 s (")
        );
        assert!(
            board
                .render(start + 3 * S)
                .starts_with("public: reconnecting (HTTP 503")
        );
    }

    #[test]
    fn silence_says_for_how_long() {
        let start = Instant::now();
        let mut board = board(&["public", "hashtag=rust"], start);
        board.set_status(0, StreamStatus::Open, start);
        board.set_status(1, StreamStatus::Open, start);
        // Under the threshold nothing is said; a heartbeat or an event resets it.
        board.handle_heartbeat(0, start + 20 * S);
        assert_eq!(
            board.render(start + 24 * S),
            "2 streams · 0.0 events/s · 0 total"
        );
        board.handle_event(0, false, start + 39 * S);
        assert_eq!(
            board.render(start + Duration::from_millis(40_300)),
            "hashtag=rust: no heartbeat for 40 s · 2 streams · 0.1 events/s · 1 total"
        );
    }

    #[test]
    fn catch_up_is_told_for_a_while_after_the_gap() {
        let start = Instant::now();
        let mut board = board(&["public"], start);
        board.set_status(0, StreamStatus::Open, start);
        board.handle_event(0, false, start);
        for _ in 0..12 {
            board.handle_event(0, true, start + S);
        }
        board.handle_gap(0, true, start + S);
        board.handle_event(0, false, start + S);
        assert_eq!(
            board.render(start + 2 * S),
            "public: caught up 12 events after a gap · 1 stream · 7.0 events/s · 14 total"
        );
        assert!(!board.render(start + 30 * S).contains("caught up"));
        // The next gap counts only its own events.
        board.handle_heartbeat(0, start + 40 * S);
        board.handle_gap(0, false, start + 40 * S);
        assert!(
            board
                .render(start + 41 * S)
                .starts_with("public: nothing missed in a gap (some may be missing) · ")
        );
    }
}
