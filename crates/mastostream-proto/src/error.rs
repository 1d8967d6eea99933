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
    /// Nothing at all (not even a heartbeat) arrived for too long: the
    /// connection is taken for dead.
    #[error("no data or heartbeat for {}s: the connection is dead", silent_for.as_secs_f64())]
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
        if let Some(message) = self.message {
            write!(f, ": {message}")?;
        }
        if self.status == 401 {
            f.write_str(
                " (Mastodon 4.2+ needs a user access token with the read scope to stream)",
            )?;
        }
        Ok(())
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
        assert!(text.starts_with("HTTP 401: Invalid access token"), "{text}");
        assert!(text.contains("read scope"));
        assert!(!e.is_retryable() && e.is_auth());
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
