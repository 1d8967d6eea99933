//! The library's one error type.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// How much of an offending payload an error keeps.
const EXCERPT_LEN: usize = 200;

/// Everything that can go wrong while streaming.
///
/// Malformed input from the server ([`Error::MalformedEvent`],
/// [`Error::EventTooLarge`]) is told apart from a broken connection
/// ([`Error::Network`]) and from a refusal by the server ([`Error::Http`]);
/// [`Error::is_retryable`] says which ones a reconnect can cure. No variant ever
/// holds an access token.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An event arrived whole but its payload could not be understood. The stream goes on.
    #[error("malformed {event:?} event: {reason} (data: {excerpt:?})")]
    MalformedEvent {
        /// The event name as the server sent it.
        event: String,
        /// What was wrong.
        reason: String,
        /// The start of the offending text, cut to a sane length.
        excerpt: String,
    },
    /// An event grew past the configured size limit; its bytes were dropped.
    #[error("{event:?} event larger than the {limit}-byte limit was dropped")]
    EventTooLarge {
        /// The event name, if its `event:` line was seen.
        event: String,
        /// The limit in bytes.
        limit: usize,
    },
    /// The connection could not be made, or broke.
    #[error("network error: {message}")]
    Network {
        /// What happened, without any URL query or token.
        message: String,
        /// The underlying error, if any.
        #[source]
        source: Option<Arc<dyn std::error::Error + Send + Sync>>,
    },
    /// The server's TLS certificate was refused (unknown issuer, expired,
    /// not for this host name, ...). Not retried: a reconnect gets the same
    /// certificate.
    #[error("the TLS certificate of {host} was refused: {reason}")]
    Certificate {
        /// The host whose certificate it was.
        host: String,
        /// What was wrong with it.
        reason: String,
    },
    /// Nothing at all (not even a heartbeat) arrived for too long: the
    /// connection is taken for dead.
    #[error("no data or heartbeat for {}: the connection is dead", human_duration(*silent_for))]
    Stalled {
        /// How long it was silent.
        silent_for: Duration,
    },
    /// The server answered 200 but not with an event stream (an HTML page
    /// from a proxy, say).
    #[error("expected an event stream, got {content_type:?}")]
    NotAStream {
        /// The response's `Content-Type`.
        content_type: String,
    },
    /// The server answered with an error status.
    #[error("{}", HttpDisplay { status: *status, message: message.as_deref() })]
    Http {
        /// The HTTP status code.
        status: u16,
        /// Mastodon's `{"error": "..."}` text, when it sent one.
        message: Option<String>,
        /// How long the server asked us to wait (`Retry-After`), in seconds.
        retry_after: Option<u64>,
    },
    /// A listener panicked while handling an item; its stream was ended.
    #[error("the listener panicked: {0}")]
    ListenerPanicked(String),
    /// A background stream's thread could not be started.
    #[error("could not start the listener thread: {0}")]
    Spawn(String),
    /// The server does not offer the stream asked for (GoToSocial has no
    /// hashtag streams, say), though it may accept the request and stay
    /// silent. Not retried.
    #[error("{server} does not stream {stream}: {reason}")]
    Unsupported {
        /// The server software, and the host.
        server: String,
        /// The stream, as `name` or `name=argument`.
        stream: String,
        /// What the server offers instead.
        reason: String,
    },
    /// The stream was closed by the user, or ended.
    #[error("stream closed")]
    Closed,
    /// The arguments or configuration were not usable.
    #[error("invalid configuration: {0}")]
    Config(String),
}

struct HttpDisplay<'a> {
    status: u16,
    message: Option<&'a str>,
}

impl fmt::Display for HttpDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {}", self.status)?;
        if let Some(reason) = reason_phrase(self.status) {
            write!(f, " {reason}")?;
        }
        if let Some(message) = self.message {
            write!(f, ": {message}")?;
        }
        if self.status == 401 && token_refusal(self.message) {
            f.write_str(
                " (Mastodon 4.2+ needs a user access token with the read scope to stream)",
            )?;
        }
        Ok(())
    }
}

/// Whether a 401's text is about the token itself (missing, invalid, short
/// of a scope), which the hint about tokens explains; a refused list, say,
/// is not.
fn token_refusal(message: Option<&str>) -> bool {
    let Some(message) = message else {
        return true;
    };
    let message = message.to_ascii_lowercase();
    ["access token", "unauthorized", "scope", "token"]
        .iter()
        .any(|word| message.contains(word))
        && !message.contains("list")
}

/// The standard reason phrase of the statuses a streaming client meets.
pub fn reason_phrase(status: u16) -> Option<&'static str> {
    Some(match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        410 => "Gone",
        413 => "Content Too Large",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => return None,
    })
}

/// A duration as a person reads it: `850 ms`, `2.3 s`, `45 s`, `2 min 5 s`,
/// `1 h 2 min` (never `45.001246112s`).
pub fn human_duration(duration: Duration) -> String {
    let ms = duration.as_millis();
    let secs = duration.as_secs();
    if ms < 1000 {
        format!("{ms} ms")
    } else if secs < 10 {
        format!("{:.1} s", duration.as_secs_f64())
    } else if secs < 60 {
        format!("{secs} s")
    } else if secs < 3600 {
        match secs % 60 {
            0 => format!("{} min", secs / 60),
            rest => format!("{} min {rest} s", secs / 60),
        }
    } else {
        match (secs % 3600) / 60 {
            0 => format!("{} h", secs / 3600),
            rest => format!("{} h {rest} min", secs / 3600),
        }
    }
}

impl Error {
    /// A [`Error::Network`] from any error; the message is the error's text.
    pub fn network(source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Error::Network {
            message: source.to_string(),
            source: Some(Arc::new(source)),
        }
    }

    /// A [`Error::MalformedEvent`], with the payload cut to a sane length.
    pub fn malformed(event: &str, reason: impl fmt::Display, data: &str) -> Self {
        Error::MalformedEvent {
            event: event.to_owned(),
            reason: reason.to_string(),
            excerpt: excerpt(data),
        }
    }

    /// Whether reconnecting may help: network failures, 5xx, 408 and 429 yes;
    /// refusals (401, 403, 400, 404, ...) and malformed input no.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Network { .. } | Error::Stalled { .. } => true,
            Error::Http { status, .. } => *status >= 500 || *status == 408 || *status == 429,
            _ => false,
        }
    }

    /// Whether the server refused the credentials (401 or 403).
    pub fn is_auth(&self) -> bool {
        matches!(
            self,
            Error::Http {
                status: 401 | 403,
                ..
            }
        )
    }

    /// Whether this error is about one event's data, not the connection.
    pub fn is_malformed(&self) -> bool {
        matches!(
            self,
            Error::MalformedEvent { .. } | Error::EventTooLarge { .. }
        )
    }
}

/// The first [`EXCERPT_LEN`] bytes of `data`, cut on a character boundary.
fn excerpt(data: &str) -> String {
    if data.len() <= EXCERPT_LEN {
        return data.to_owned();
    }
    let mut end = EXCERPT_LEN;
    while !data.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &data[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_excerpt_is_cut_on_a_char_boundary() {
        let data = "é".repeat(500);
        let Error::MalformedEvent { excerpt, .. } = Error::malformed("update", "bad", &data) else {
            panic!("wrong variant")
        };
        assert!(excerpt.len() <= EXCERPT_LEN + '…'.len_utf8());
        assert!(excerpt.ends_with('…'));
    }

    #[test]
    fn http_display_names_status_text_and_scope_hint() {
        let e = Error::Http {
            status: 401,
            message: Some("Invalid access token".into()),
            retry_after: None,
        };
        let text = e.to_string();
        assert!(
            text.starts_with("HTTP 401 Unauthorized: Invalid access token"),
            "{text}"
        );
        assert!(text.contains("read scope"));
        assert!(!e.is_retryable() && e.is_auth());
        let list = Error::Http {
            status: 401,
            message: Some("Not authorized to stream this list".into()),
            retry_after: None,
        };
        assert_eq!(
            list.to_string(),
            "HTTP 401 Unauthorized: Not authorized to stream this list"
        );
        let busy = Error::Http {
            status: 408,
            message: None,
            retry_after: None,
        };
        assert_eq!(busy.to_string(), "HTTP 408 Request Timeout");
    }

    #[test]
    fn durations_read_as_people_write_them() {
        let d = |ms| human_duration(Duration::from_millis(ms));
        assert_eq!(d(850), "850 ms");
        assert_eq!(d(2_349), "2.3 s");
        assert_eq!(d(45_001), "45 s");
        assert_eq!(d(120_000), "2 min");
        assert_eq!(d(125_900), "2 min 5 s");
        assert_eq!(d(3_720_000), "1 h 2 min");
        let stalled = Error::Stalled {
            silent_for: Duration::from_nanos(45_001_246_112),
        };
        assert_eq!(
            stalled.to_string(),
            "no data or heartbeat for 45 s: the connection is dead"
        );
    }

    #[test]
    fn retryable_classification() {
        let http = |status| Error::Http {
            status,
            message: None,
            retry_after: None,
        };
        assert!(http(503).is_retryable());
        assert!(http(429).is_retryable());
        assert!(!http(400).is_retryable());
        assert!(!http(404).is_retryable());
        assert!(!http(403).is_retryable());
        assert!(!Error::malformed("update", "x", "y").is_retryable());
        assert!(
            Error::Network {
                message: "reset".into(),
                source: None
            }
            .is_retryable()
        );
    }
}
