//! Turning HTTP responses and failures into [`Error`]s.

use reqwest::Response;
use reqwest::header::{HeaderMap, RETRY_AFTER};

use crate::Error;
use crate::transport::tls;
use mastostream_proto::server_wait;

/// How much of an error body is read for Mastodon's `{"error": "..."}`.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// A network failure, with no URL in it (a URL may carry a query token),
/// and its causes spelled out: "error decoding response body" alone does not
/// say that the server cut the stream.
pub(crate) fn network(error: reqwest::Error) -> Error {
    let host = error
        .url()
        .and_then(|url| url.host_str())
        .unwrap_or("the server")
        .to_owned();
    if let Some(reason) = tls::certificate_refusal(&error) {
        return tls::certificate_error(&host, reason);
    }
    if host.starts_with('[') && chain_mentions(&error, "Invalid Server Name") {
        // reqwest (0.12 and 0.13) names the server inside a proxy's CONNECT
        // tunnel by its bracketed IPv6 literal, which rustls refuses: the
        // same try would fail the same way, so it is not retried.
        return Error::Config(format!(
            "cannot use TLS to {host} through the proxy over HTTP (SSE, REST): the HTTP \
             client cannot name an IPv6 literal inside a proxy tunnel; use the server's host \
             name, or connect directly (NO_PROXY={}, or no proxy)",
            host.trim_start_matches('[').trim_end_matches(']')
        ));
    }
    if chain_mentions(&error, "proxy authorization required") {
        // reqwest's CONNECT got 407: the same credentials (none) would get
        // the same answer, so it is the status, not a network blip.
        return Error::Http {
            status: 407,
            message: Some(format!(
                "the proxy refused to connect to {host}: proxy authentication required (put \
                 the credentials in the proxy URL, http://user:password@host:port)"
            )),
            retry_after: None,
        };
    }
    let error = error.without_url();
    let mut message = if error.is_body() || error.is_decode() {
        "the stream was cut off".to_owned()
    } else {
        error.to_string()
    };
    let mut cause = std::error::Error::source(&error);
    while let Some(inner) = cause {
        message.push_str(": ");
        message.push_str(&inner.to_string());
        cause = inner.source();
    }
    Error::Network {
        message,
        source: Some(std::sync::Arc::new(error)),
    }
}

/// Whether `error` or one of its causes says `text`.
fn chain_mentions(error: &(dyn std::error::Error + 'static), text: &str) -> bool {
    std::iter::successors(Some(error), |e| e.source()).any(|e| e.to_string().contains(text))
}

/// Sends an idempotent request (every request here is a GET), once more at
/// once when a pooled keep-alive connection turns out to have been closed
/// by the other side as the request went out (hyper's "connection closed
/// before message completed"): a proxy such as tinyproxy closes each
/// connection after its answer without saying so, and the race is lost
/// now and then. Any other failure, or a second one, is the caller's.
pub(crate) async fn send(request: reqwest::RequestBuilder) -> Result<Response, reqwest::Error> {
    let again = request.try_clone();
    match request.send().await {
        Err(error) if stale_connection(&error) => match again {
            Some(again) => {
                tracing::debug!("a pooled connection was closed under the request; sent again");
                again.send().await
            }
            None => Err(error),
        },
        other => other,
    }
}

/// Whether `error` is a request lost to a connection closed under it.
fn stale_connection(error: &reqwest::Error) -> bool {
    error.is_request() && chain_mentions(error, "connection closed before message completed")
}

/// The body of a successful answer, refused past `limit` bytes: a
/// server can send without end within the request timeout, and all of it
/// was held.
pub(crate) async fn body_within(mut response: Response, limit: usize) -> Result<Vec<u8>, Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(network)? {
        if body.len() + chunk.len() > limit {
            return Err(Error::Network {
                message: format!(
                    "the answer from {} is larger than {} KiB",
                    response.url().host_str().unwrap_or("the server"),
                    limit / 1024
                ),
                source: None,
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// How long the body of a refusal is read: what came by then is used.
pub(crate) const ERROR_BODY_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The error for a non-success response: its status, Mastodon's `error` text
/// and `Retry-After` (in seconds; an HTTP date counts as unknown). The body
/// is read for at most [`ERROR_BODY_WAIT`]: a server that announces a body
/// and never sends it does not hold the reconnect.
pub(crate) async fn status_error(mut response: Response) -> Error {
    let mut body = Vec::new();
    let _ = tokio::time::timeout(ERROR_BODY_WAIT, async {
        while body.len() < ERROR_BODY_LIMIT {
            match response.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                _ => break,
            }
        }
    })
    .await;
    refusal(response.status().as_u16(), response.headers(), &body)
}

/// The error for a refused request (or WebSocket upgrade), from its status,
/// headers and (the start of) its body.
pub(crate) fn refusal(status: u16, headers: &HeaderMap, body: &[u8]) -> Error {
    // Both clamped by the protocol crate: the wire can say anything.
    let now = std::time::SystemTime::now();
    let header = |name| {
        headers
            .get(name)
            .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
    };
    let retry_after = header(RETRY_AFTER.as_str())
        .and_then(|v| server_wait::retry_after(v, now))
        // Mastodon's rate limiter says when the window resets instead.
        .or_else(|| header("x-ratelimit-reset").and_then(|v| server_wait::rate_limit_reset(v, now)))
        // Rounded up: waking a moment late beats a second refusal.
        .map(|wait| wait.as_secs() + u64::from(wait.subsec_nanos() > 0));
    let message = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
        .or_else(|| {
            // Refused WebSocket upgrades and some proxies put it in a header.
            headers
                .get("x-error-message")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        });
    Error::Http {
        status,
        message,
        retry_after,
    }
}
