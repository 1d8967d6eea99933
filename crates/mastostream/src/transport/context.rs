//! What the drivers need from the client that made them: the HTTP client,
//! the settings, the token and the streaming host. It lives below the
//! drivers, so they never reach up into the front-ends.

use std::time::Duration;

use reqwest::Url;
use tokio::sync::OnceCell;

use crate::Error;
use crate::token::Token;
use crate::transport::http;
use mastostream_proto::{Channel, ReconnectPolicy, Software};

/// The settings a stream's connection task works with.
#[derive(Debug, Clone)]
pub(crate) struct StreamSettings {
    pub reconnect: ReconnectPolicy,
    pub stable_after: Duration,
    pub stall_timeout: Option<Duration>,
    pub greeting_timeout: Duration,
    pub max_event_size: usize,
    /// Entities built when asked for ([`mastostream_proto::Event::on_demand`]).
    pub parse_on_demand: bool,
}

/// How the token reaches a WebSocket server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum WsAuth {
    /// `Authorization: Bearer` (the default).
    #[default]
    Header,
    /// `Sec-WebSocket-Protocol`, for browsers' sake some servers expect it.
    Protocol,
    /// `?access_token=`: leaks into server and proxy logs.
    Query,
}

/// Which transport streams use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Transport {
    /// Server-Sent Events: one HTTP connection per stream.
    Sse,
    /// One WebSocket per client, all streams multiplexed on it. Mastodon,
    /// glitch-soc, Pleroma and Iceshrimp.NET multiplex; a stream that
    /// cannot share the connection gets a WebSocket of its own, the stream
    /// named in its URL: every stream on GoToSocial (it labels every event
    /// with the connection's first stream) and hashtag and list streams on
    /// Akkoma (its in-band subscribe takes no tag or list).
    WebSocket,
    /// SSE, switching a stream to a WebSocket of its own (the stream named
    /// in its URL) when SSE answers 400 or 404, is not an event stream, or
    /// opens without a greeting: GoToSocial, Pleroma, Akkoma and
    /// Iceshrimp.NET serve no SSE, and every one of them takes a stream
    /// from the URL. The default.
    #[default]
    Auto,
}

#[derive(Debug)]
pub(crate) struct Context {
    pub http: reqwest::Client,
    // The WebSocket's own connection reads these; SSE and REST go
    // through `http`, built with them.
    #[cfg_attr(not(feature = "websocket"), allow(dead_code))]
    pub user_agent: String,
    #[cfg_attr(not(feature = "websocket"), allow(dead_code))]
    pub connect_timeout: Duration,
    #[cfg_attr(not(feature = "websocket"), allow(dead_code))]
    pub ws_auth: WsAuth,
    /// Bytes of events a consumer's queue holds before its overflow rule applies.
    pub queue_limit: usize,
    pub transport: Transport,
    pub catch_up: crate::transport::CatchUpSetting,
    #[cfg(feature = "websocket")]
    pub shared_mux: crate::transport::mux::SharedSlot,
    pub server: Url,
    pub token: Option<Token>,
    pub token_in_query: bool,
    pub streaming_override: Option<Url>,
    pub streaming_base: OnceCell<Url>,
    /// The server software, told from the instance document by discovery
    /// (or given to the builder).
    pub software: OnceCell<Software>,
    /// Whether the log has said once that a WebSocket goes to a server
    /// given by its streaming URL and never named.
    #[cfg_attr(not(feature = "websocket"), allow(dead_code))]
    pub unnamed_software_noted: std::sync::atomic::AtomicBool,
    /// For REST requests only: a stream must not time out as a whole.
    pub request_timeout: Duration,
    pub settings: StreamSettings,
    /// The TLS configurations (`http` is already inside `http`).
    #[cfg_attr(not(feature = "websocket"), allow(dead_code))]
    pub tls: crate::transport::tls::TlsConfigs,
    /// Which proxy a connection goes through (reqwest has its own copy).
    #[cfg_attr(not(feature = "websocket"), allow(dead_code))]
    pub proxies: mastostream_proto::ProxyRules,
}

impl Context {
    /// The configured streaming URL, or the discovered one (cached).
    pub(crate) async fn streaming_base(&self) -> Result<Url, Error> {
        if let Some(url) = &self.streaming_override {
            return Ok(url.clone());
        }
        self.streaming_base
            .get_or_try_init(|| discover(self))
            .await
            .cloned()
    }

    /// The server software, as discovery found it or the builder was told:
    /// `None` before discovery has run, and for a client given its
    /// streaming URL (which skips discovery) and not its software.
    pub(crate) fn software(&self) -> Option<Software> {
        self.software.get().copied()
    }

    /// An [`Error::Unsupported`] when the server is one known to lack
    /// `channel` (see [`software`](Self::software)).
    pub(crate) fn check_stream(&self, channel: &Channel) -> Result<(), Error> {
        let Some(software) = self.software() else {
            return Ok(());
        };
        match software.lacks(channel) {
            Some(reason) => Err(Error::Unsupported {
                server: {
                    let host = self.server.host_str().unwrap_or_default();
                    match self.server.port() {
                        Some(port) => format!("{} ({host}:{port})", software.name()),
                        None => format!("{} ({host})", software.name()),
                    }
                },
                stream: channel.to_string(),
                reason: reason.to_owned(),
            }),
            None => Ok(()),
        }
    }
}

/// A base URL: `ws`/`wss` mapped to `http`/`https`, path, query and fragment dropped.
pub(crate) fn parse_base_url(text: &str) -> Result<Url, Error> {
    let mut url = Url::parse(text.trim()).map_err(|e| Error::Config(format!("bad URL: {e}")))?;
    let scheme = match url.scheme() {
        "https" | "wss" => "https",
        "http" | "ws" => "http",
        other => return Err(Error::Config(format!("unsupported URL scheme {other:?}"))),
    };
    if url.host_str().is_none() {
        return Err(Error::Config("the URL has no host".into()));
    }
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.set_path("");
    url.set_query(None);
    url.set_fragment(None);
    // Switching between special schemes is allowed by the URL standard.
    url.set_scheme(scheme)
        .map_err(|_| Error::Config(format!("cannot use {scheme} for {text:?}")))?;
    Ok(url)
}

/// The instance documents, newest API first, with where each holds the
/// streaming URL.
const INSTANCE_DOCUMENTS: [(&str, &str); 2] = [
    ("/api/v2/instance", "/configuration/urls/streaming"),
    ("/api/v1/instance", "/urls/streaming_api"),
];

/// Fetches one instance document; `Ok(None)` when the server has none
/// there (or not as JSON), `Err` when it cannot be reached.
async fn instance_document(
    inner: &Context,
    path: &str,
) -> Result<Option<serde_json::Value>, Error> {
    let mut url = inner.server.clone();
    url.set_path(path);
    let response = match http::send(inner.http.get(url).timeout(inner.request_timeout)).await {
        Ok(response) => response,
        Err(error) if error.is_connect() || error.is_timeout() => {
            return Err(http::network(error));
        }
        Err(_) => return Ok(None),
    };
    if !response.status().is_success() {
        return Ok(None);
    }
    // An instance document is a few KiB; one of megabytes is not one.
    let Ok(bytes) = http::body_within(response, 1024 * 1024).await else {
        return Ok(None);
    };
    Ok(serde_json::from_slice::<serde_json::Value>(&bytes).ok())
}

/// Notes the software a document names, once.
fn note_software(inner: &Context, document: &serde_json::Value) {
    let software = Software::identify(document);
    if software != Software::Unknown {
        let _ = inner.software.set(software);
    }
}

/// Reads the streaming URL from the instance endpoints (and, on the way,
/// the server software).
async fn discover(inner: &Context) -> Result<Url, Error> {
    for (path, pointer) in INSTANCE_DOCUMENTS {
        let Some(body) = instance_document(inner, path).await? else {
            continue;
        };
        note_software(inner, &body);
        if let Some(found) = body.pointer(pointer).and_then(|v| v.as_str())
            && !found.is_empty()
        {
            tracing::debug!(streaming = found, "discovered the streaming host");
            return parse_base_url(found);
        }
    }
    // Both documents read (or absent): what they did not say stays unknown.
    let _ = inner.software.set(Software::Unknown);
    Ok(inner.server.clone())
}
