//! Following an instance's public local timeline over REST, for servers
//! that stream only to a token (Mastodon 4.2 and later): `min_id` paging
//! from the newest post seen, at an interval that follows the server's
//! rate limit.

use std::time::{Duration, SystemTime};

use mastostream_proto::{id_order, server_wait};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;

/// A page's statuses, oldest first, each as its JSON text.
pub type Statuses = Vec<String>;

/// How a poll went.
#[derive(Debug)]
pub enum Polled {
    /// A page (maybe empty), whether it was full (more are waiting), and
    /// the rate limit's requests left with the time until it resets.
    Page {
        statuses: Statuses,
        full: bool,
        budget: Option<(u64, Duration)>,
    },
    /// Rate limited: try again after this.
    Wait(Duration),
    /// The server refuses the timeline for good (401, 403, 404, 410...).
    Refused(String),
    /// A transient failure (network, 5xx): back off and retry.
    Failed(String),
}

/// Statuses a page asks for (Mastodon's maximum).
pub const PAGE: usize = 40;

/// The most a page may weigh (40 statuses are some hundreds of KiB).
const PAGE_BYTES: usize = 32 * 1024 * 1024;

/// A response's body, up to `limit` bytes, and whether there was more (a
/// server can send without end within the request's time).
pub async fn body_up_to(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<(Vec<u8>, bool), reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = limit - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return Ok((body, true));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, false))
}

/// Fetches the statuses after `min_id` (the newest ones when `None`).
pub async fn page(
    http: &reqwest::Client,
    base: &str,
    token: Option<&str>,
    min_id: Option<&str>,
) -> Polled {
    let mut url = format!("{base}/api/v1/timelines/public?local=true&limit={PAGE}");
    if let Some(min_id) = min_id {
        url.push_str("&min_id=");
        url.push_str(&mastostream_proto::percent_encode(min_id));
    }
    let mut request = http.get(&url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = match request.send().await {
        Ok(response) => response,
        Err(error) => return Polled::Failed(format!("the timeline request failed: {error}")),
    };
    let status = response.status();
    let headers = response.headers().clone();
    if status == StatusCode::TOO_MANY_REQUESTS {
        return Polled::Wait(rate_limit_wait(&headers).unwrap_or(Duration::from_secs(60)));
    }
    if matches!(status.as_u16(), 401 | 403 | 404 | 410 | 422) {
        return Polled::Refused(format!("the public timeline answers HTTP {status}"));
    }
    if !status.is_success() {
        return Polled::Failed(format!("the public timeline answers HTTP {status}"));
    }
    let body = match body_up_to(response, PAGE_BYTES).await {
        Ok((body, false)) => body,
        Ok((_, true)) => {
            return Polled::Failed(format!(
                "the timeline page is larger than {} MiB",
                PAGE_BYTES >> 20
            ));
        }
        Err(error) => return Polled::Failed(format!("the timeline's body broke off: {error}")),
    };
    let Ok(items) = serde_json::from_slice::<Vec<Box<serde_json::value::RawValue>>>(&body) else {
        return Polled::Failed("the public timeline is not a JSON array".into());
    };
    let full = items.len() >= PAGE;
    let mut statuses: Vec<(String, String)> = items
        .into_iter()
        .filter_map(|raw| {
            let id = serde_json::from_str::<IdOnly>(raw.get()).ok()?.id;
            Some((id, raw.get().to_owned()))
        })
        .collect();
    // Mastodon answers a `min_id` page newest first, Iceshrimp.NET oldest
    // first: put it in id order either way.
    statuses.sort_by(|a, b| id_order(&a.0, &b.0));
    Polled::Page {
        statuses: statuses.into_iter().map(|(_, json)| json).collect(),
        full,
        budget: budget(&headers),
    }
}

#[derive(serde::Deserialize)]
struct IdOnly {
    id: String,
}

/// The id of a status's JSON text.
pub fn id_of(json: &str) -> Option<String> {
    serde_json::from_str::<IdOnly>(json).ok().map(|s| s.id)
}

/// How long the rate-limit headers ask to wait: `Retry-After`, else until
/// `X-RateLimit-Reset` when nothing remains.
pub fn rate_limit_wait(headers: &HeaderMap) -> Option<Duration> {
    let now = SystemTime::now();
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(wait) = text("retry-after").and_then(|v| server_wait::retry_after(v, now)) {
        return Some(wait);
    }
    let remaining = text("x-ratelimit-remaining").and_then(|v| v.trim().parse::<u64>().ok())?;
    if remaining > 0 {
        return None;
    }
    text("x-ratelimit-reset").and_then(|v| server_wait::rate_limit_reset(v, now))
}

/// `X-RateLimit-Remaining` and the time until `X-RateLimit-Reset`.
fn budget(headers: &HeaderMap) -> Option<(u64, Duration)> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let left = text("x-ratelimit-remaining")?.trim().parse().ok()?;
    let reset = server_wait::rate_limit_reset(text("x-ratelimit-reset")?, SystemTime::now())?;
    Some((left, reset))
}

/// The pause before the next poll: the base interval, stretched so that
/// the requests left in the window last until it resets, and never below
/// `min`.
pub fn interval(budget: Option<(u64, Duration)>, base: Duration, min: Duration) -> Duration {
    let spread = budget
        .filter(|(left, _)| *left > 0)
        .map(|(left, until_reset)| until_reset / u32::try_from(left).unwrap_or(u32::MAX));
    base.max(spread.unwrap_or_default()).max(min)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A loopback server answering each request with `head` and then
    /// `filler` `times` times (`usize::MAX`: until the client goes).
    async fn server(filler: &'static [u8], times: usize) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 8192];
                    let _ = socket.read(&mut buf).await;
                    let length = if times == usize::MAX {
                        String::new()
                    } else {
                        format!("content-length: {}\r\n", filler.len() * times)
                    };
                    let head = format!("HTTP/1.1 200 OK\r\n{length}connection: close\r\n\r\n");
                    let mut out = socket.write_all(head.as_bytes()).await;
                    for _ in 0..times {
                        if out.is_err() {
                            break;
                        }
                        out = socket.write_all(filler).await;
                    }
                });
            }
        });
        url
    }

    #[tokio::test]
    async fn a_body_is_read_up_to_its_bound() {
        let http = reqwest::Client::new();
        let endless = server(&[b'x'; 4096], usize::MAX).await;
        let response = http.get(&endless).send().await.unwrap();
        let (body, cut) = body_up_to(response, 100_000).await.unwrap();
        assert_eq!((body.len(), cut), (100_000, true));
        let short = server(b"User-agent: *\n", 3).await;
        let response = http.get(&short).send().await.unwrap();
        let (body, cut) = body_up_to(response, 100_000).await.unwrap();
        assert_eq!((body.len(), cut), (42, false));
    }

    #[test]
    fn the_interval_spreads_what_is_left_of_the_rate_limit() {
        let base = Duration::from_secs(5);
        let min = Duration::from_secs(1);
        assert_eq!(interval(None, base, min), base);
        // 300 requests left for 300 s: 1 s apart, the base is longer.
        assert_eq!(
            interval(Some((300, Duration::from_secs(300))), base, min),
            base
        );
        // 10 left for 300 s: 30 s apart.
        assert_eq!(
            interval(Some((10, Duration::from_secs(300))), base, min),
            Duration::from_secs(30)
        );
        assert_eq!(
            interval(Some((0, Duration::from_secs(300))), base, min),
            base
        );
        assert_eq!(interval(None, Duration::ZERO, min), min);
    }
}
