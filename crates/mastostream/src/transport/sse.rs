//! Opening one SSE connection.

use reqwest::Response;
use reqwest::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE};

use crate::Error;
use crate::transport::context::Context;
use crate::transport::http;
use mastostream_proto::Channel;

/// Opens `stream` on the streaming host; returns the response once it is a
/// 200 event stream.
pub(crate) async fn open(
    inner: &Context,
    base: &reqwest::Url,
    stream: &Channel,
) -> Result<Response, Error> {
    let mut url = base.clone();
    let path_and_query = stream.sse_path_and_query();
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((&path_and_query, ""));
    url.set_path(path);
    url.set_query((!query.is_empty()).then_some(query));
    tracing::debug!(url = %url, "opening SSE stream");
    let mut request = inner
        .http
        .get(url)
        .header(ACCEPT, "text/event-stream")
        .header(CACHE_CONTROL, "no-store");
    if let Some(token) = &inner.token {
        request = if inner.token_in_query {
            request.query(&[("access_token", token.expose())])
        } else {
            request.bearer_auth(token.expose())
        };
    }
    // The whole request may not time out (the stream lasts), but its
    // answer must come: a stalled server once kept a reconnect waiting 56 s.
    let response = tokio::time::timeout(inner.request_timeout, http::send(request))
        .await
        .map_err(|_| Error::Network {
            message: format!(
                "no answer within {}",
                crate::state::human_duration(inner.request_timeout)
            ),
            source: None,
        })?
        .map_err(http::network)?;
    if !response.status().is_success() {
        return Err(http::status_error(response).await);
    }
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("text/event-stream")
    {
        return Err(Error::NotAStream {
            content_type: content_type.chars().take(100).collect(),
        });
    }
    Ok(response)
}
