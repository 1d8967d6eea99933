//! The entry point: a client for one Mastodon server, its streaming host
//! discovered once, and streams opened from it.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use tokio::sync::OnceCell;

use crate::Error;
use crate::event_stream::EventStream;
use crate::listener::StreamListener;
use crate::proto::liveness::{DEFAULT_GREETING_TIMEOUT, DEFAULT_STALL_TIMEOUT};
use crate::proto::sse::DEFAULT_MAX_EVENT_SIZE;
use crate::proto::{Channel, ReconnectPolicy};
use crate::token::Token;
use crate::transport::mux::Multiplex;
use crate::transport::{http, task};

/// The settings a stream's connection task works with.
#[derive(Debug, Clone)]
pub(crate) struct StreamSettings {
    pub reconnect: ReconnectPolicy,
    pub stable_after: Duration,
    pub stall_timeout: Option<Duration>,
    pub greeting_timeout: Duration,
    pub max_event_size: usize,
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
    /// One WebSocket per client, all streams multiplexed on it.
    WebSocket,
    /// SSE, switching a stream to the WebSocket when SSE answers 400 or 404,
    /// is not an event stream, or opens without a greeting (servers such as
    /// GoToSocial serve no SSE). The default.
    #[default]
    Auto,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub http: reqwest::Client,
    pub user_agent: String,
    pub connect_timeout: Duration,
    pub ws_auth: WsAuth,
    pub ws_timeout: Option<Duration>,
    pub ws_backlog: usize,
    pub transport: Transport,
    pub catch_up: Option<crate::transport::catch_up::CatchUpConfig>,
    pub shared_mux: std::sync::Mutex<std::sync::Weak<crate::transport::mux::MuxShared>>,
    pub server: Url,
    pub token: Option<Token>,
    pub token_in_query: bool,
    pub streaming_override: Option<Url>,
    pub streaming_base: OnceCell<Url>,
    /// For REST requests only: a stream must not time out as a whole.
    pub request_timeout: Duration,
    pub settings: StreamSettings,
}

/// A client for one Mastodon server's streaming API. Cheap to clone.
///
/// ```no_run
/// use futures_util::StreamExt;
/// use mastostream::{Client, proto::Channel};
///
/// # async fn run() -> Result<(), mastostream::Error> {
/// let client = Client::builder("https://mastodon.example").token("…").build()?;
/// let mut events = client.stream(Channel::PublicLocal);
/// while let Some(event) = events.next().await {
///     match event {
///         Ok(event) => println!("{}", event.name()),
///         Err(error) => eprintln!("{error}"),
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

/// Builds a [`Client`]; see [`Client::builder`].
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    server: String,
    token: Option<Token>,
    token_in_query: bool,
    user_agent: String,
    connect_timeout: Duration,
    request_timeout: Duration,
    streaming_url: Option<String>,
    ws_auth: WsAuth,
    ws_timeout: Option<Duration>,
    ws_backlog: usize,
    transport: Transport,
    catch_up: Option<crate::transport::catch_up::CatchUpConfig>,
    settings: StreamSettings,
}

impl ClientBuilder {
    /// The access token, sent as `Authorization: Bearer` (Mastodon 4.2+ needs
    /// a user token with the `read` scope to stream).
    pub fn token(mut self, token: impl Into<String>) -> Self {
        let token = token.into();
        self.token = (!token.is_empty()).then(|| Token::new(token));
        self
    }

    /// Sends the token as the `access_token` query parameter instead of a
    /// header, for servers or proxies that need it. Beware: URLs end up in
    /// proxy and server logs, so the token does too.
    pub fn token_in_query(mut self, yes: bool) -> Self {
        self.token_in_query = yes;
        if yes {
            self.ws_auth = WsAuth::Query;
        }
        self
    }

    /// How the token is sent on WebSocket connections (default: `Authorization` header).
    /// [`token_in_query`](Self::token_in_query) also selects [`WsAuth::Query`].
    pub fn ws_auth(mut self, auth: WsAuth) -> Self {
        self.ws_auth = auth;
        self
    }

    /// How long a WebSocket may bring no frame and no ping before it is taken
    /// for dead (default 75 s: Mastodon pings every 30 s); `None` turns this off.
    pub fn ws_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.ws_timeout = timeout;
        self
    }

    /// How many bytes of events a multiplexed WebSocket holds for
    /// subscriptions whose consumers are behind (default 1 MiB). Meanwhile
    /// it goes on reading: the other subscriptions get their events, and the
    /// server's pings are answered (Mastodon cuts a connection that misses a
    /// pong). Past this bound it stops reading until they catch up, and TCP
    /// pushes back on the server. A subscription alone on its connection
    /// holds nobody up, so for it nothing is held: the connection waits.
    pub fn ws_backlog(mut self, bytes: usize) -> Self {
        self.ws_backlog = bytes;
        self
    }

    /// The transport [`Client::stream`] uses (default [`Transport::Auto`]).
    pub fn transport(mut self, transport: Transport) -> Self {
        self.transport = transport;
        self
    }

    /// Gap-free streaming: after each outage, fetch what was missed over REST
    /// (see [`CatchUpConfig`](crate::CatchUpConfig)); off by default. Caught-up
    /// events say [`is_caught_up`](crate::Event::is_caught_up); a
    /// [`Gap`](crate::proto::Gap) event follows each outage.
    pub fn catch_up(mut self, on: bool) -> Self {
        self.catch_up = on.then(Default::default);
        self
    }

    /// Catch-up with these settings.
    pub fn catch_up_with(mut self, config: crate::transport::catch_up::CatchUpConfig) -> Self {
        self.catch_up = Some(config);
        self
    }

    /// The `User-Agent` header.
    pub fn user_agent(mut self, agent: impl Into<String>) -> Self {
        self.user_agent = agent.into();
        self
    }

    /// How long a TCP/TLS connect may take (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long a REST request (discovery, health) may take (default 30 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Skips discovery and streams from this URL (`https://`, `http://`,
    /// `wss://` or `ws://`).
    pub fn streaming_url(mut self, url: impl Into<String>) -> Self {
        self.streaming_url = Some(url.into());
        self
    }

    /// When to reconnect (default: backoff from 0.5 s to 60 s).
    pub fn reconnect(mut self, policy: ReconnectPolicy) -> Self {
        self.settings.reconnect = policy;
        self
    }

    /// How long a connection must stay up before the backoff starts over (default 30 s).
    pub fn stable_after(mut self, duration: Duration) -> Self {
        self.settings.stable_after = duration;
        self
    }

    /// How long a stream may be silent, heartbeats included, before it is
    /// taken for dead and reconnected (default 45 s); `None` turns this off.
    pub fn stall_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.settings.stall_timeout = timeout;
        self
    }

    /// How long after a 200 the first byte may take before a warning about a
    /// buffering proxy is logged (default 20 s).
    pub fn greeting_timeout(mut self, timeout: Duration) -> Self {
        self.settings.greeting_timeout = timeout;
        self
    }

    /// The largest event accepted, in bytes (default 1 MiB).
    pub fn max_event_size(mut self, bytes: usize) -> Self {
        self.settings.max_event_size = bytes;
        self
    }

    /// Builds the client. Fails only on an unusable URL or TLS setup.
    pub fn build(self) -> Result<Client, Error> {
        let server = parse_base_url(&self.server)?;
        let streaming_override = self
            .streaming_url
            .as_deref()
            .map(parse_base_url)
            .transpose()?;
        let http = reqwest::Client::builder()
            .user_agent(self.user_agent.clone())
            .connect_timeout(self.connect_timeout)
            .tcp_nodelay(true)
            // reqwest drops `Authorization` when a redirect leaves the host.
            .redirect(reqwest::redirect::Policy::limited(5))
            .build()
            .map_err(|e| Error::Config(e.without_url().to_string()))?;
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                user_agent: self.user_agent,
                connect_timeout: self.connect_timeout,
                ws_auth: self.ws_auth,
                ws_timeout: self.ws_timeout,
                ws_backlog: self.ws_backlog,
                transport: self.transport,
                catch_up: self.catch_up,
                shared_mux: Default::default(),
                server,
                token: self.token,
                token_in_query: self.token_in_query,
                streaming_override,
                streaming_base: OnceCell::new(),
                request_timeout: self.request_timeout,
                settings: self.settings,
            }),
        })
    }
}

/// A base URL: `ws`/`wss` mapped to `http`/`https`, path, query and fragment dropped.
fn parse_base_url(text: &str) -> Result<Url, Error> {
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

impl Client {
    /// A builder for a client of the server at `server` (e.g. `https://mastodon.social`).
    pub fn builder(server: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            server: server.into(),
            token: None,
            token_in_query: false,
            user_agent: concat!("mastostream/", env!("CARGO_PKG_VERSION")).to_owned(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            streaming_url: None,
            ws_auth: WsAuth::Header,
            ws_timeout: Some(Duration::from_secs(75)),
            ws_backlog: 1 << 20,
            transport: Transport::Auto,
            catch_up: None,
            settings: StreamSettings {
                reconnect: ReconnectPolicy::default(),
                stable_after: crate::proto::reconnect::DEFAULT_STABLE_AFTER,
                stall_timeout: Some(DEFAULT_STALL_TIMEOUT),
                greeting_timeout: DEFAULT_GREETING_TIMEOUT,
                max_event_size: DEFAULT_MAX_EVENT_SIZE,
            },
        }
    }

    /// The server's base URL.
    pub fn server(&self) -> &Url {
        &self.inner.server
    }

    /// The streaming host, discovered once and cached: `/api/v2/instance`
    /// `configuration.urls.streaming`, else `/api/v1/instance`
    /// `urls.streaming_api`, else the server itself.
    pub async fn streaming_base(&self) -> Result<Url, Error> {
        self.inner.streaming_base().await
    }

    /// Whether the streaming server answers its health check with `OK`.
    pub async fn stream_healthy(&self) -> bool {
        self.health().await.is_ok()
    }

    /// The health check, with the reason when it fails.
    pub async fn health(&self) -> Result<(), Error> {
        let mut url = self.streaming_base().await?;
        url.set_path("/api/v1/streaming/health");
        let response = self
            .inner
            .http
            .get(url)
            .timeout(self.inner.request_timeout)
            .send()
            .await
            .map_err(http::network)?;
        if !response.status().is_success() {
            return Err(http::status_error(response).await);
        }
        let body = response.bytes().await.map_err(http::network)?;
        match body.trim_ascii() {
            b"OK" | b"success" => Ok(()),
            other => Err(Error::Http {
                status: 200,
                message: Some(format!(
                    "unexpected health answer {:?}",
                    String::from_utf8_lossy(&other[..other.len().min(100)])
                )),
                retry_after: None,
            }),
        }
    }

    /// Opens a stream. It returns at once; the connection is made (and remade,
    /// per the reconnect policy) in the background. Dropping the stream closes
    /// it. Over [`Transport::WebSocket`] every stream of this client shares one
    /// connection.
    pub fn stream(&self, stream: Channel) -> EventStream {
        EventStream::new(self.open(stream))
    }

    /// Opens a stream with catch-up set for it alone (`None`: off), whatever
    /// the client's default.
    pub fn stream_with_catch_up(
        &self,
        stream: Channel,
        catch_up: Option<crate::transport::catch_up::CatchUpConfig>,
    ) -> EventStream {
        let handle = self.connect(stream);
        EventStream::new(match catch_up {
            Some(config) => crate::transport::catch_up::wrap(self.inner.clone(), handle, config),
            None => handle,
        })
    }

    /// The stream's connection, on the client's transport, without catch-up.
    fn connect(&self, stream: Channel) -> task::TaskHandle {
        match self.inner.transport {
            Transport::Sse | Transport::Auto => task::spawn(self.inner.clone(), stream),
            Transport::WebSocket => self.shared_multiplex().subscribe_handle(stream),
        }
    }

    pub(crate) fn open(&self, stream: Channel) -> task::TaskHandle {
        let handle = self.connect(stream);
        self.with_catch_up(handle)
    }

    pub(crate) fn open_on(
        &self,
        runtime: &tokio::runtime::Handle,
        stream: Channel,
    ) -> task::TaskHandle {
        // Tasks spawned below (multiplexer, catch-up stage) go to `runtime`.
        let _guard = runtime.enter();
        self.open(stream)
    }

    fn with_catch_up(&self, handle: task::TaskHandle) -> task::TaskHandle {
        match self.inner.catch_up {
            Some(config) => crate::transport::catch_up::wrap(self.inner.clone(), handle, config),
            None => handle,
        }
    }

    /// A new multiplexed WebSocket: one connection, subscriptions added and
    /// removed at run time. It connects when created (on the current runtime).
    pub fn multiplex(&self) -> Multiplex {
        Multiplex::start(self.inner.clone())
    }

    fn shared_multiplex(&self) -> Multiplex {
        shared_multiplex(&self.inner)
    }

    /// Streams to a listener until the stream ends; returns the error that
    /// ended it (with reconnect on, only a fatal one).
    pub async fn stream_to<L: StreamListener + ?Sized>(
        &self,
        stream: Channel,
        listener: &mut L,
    ) -> Error {
        let mut handle = self.open(stream);
        loop {
            match handle.signals.recv().await {
                Some(signal) => {
                    if let Some(error) = task::deliver(signal, listener) {
                        return error;
                    }
                }
                None => return Error::Closed,
            }
        }
    }
}

/// The client's shared multiplexed WebSocket, made on first use (on the
/// current runtime) and closed when its last subscription ends.
pub(crate) fn shared_multiplex(inner: &Arc<Inner>) -> Multiplex {
    let mut slot = inner.shared_mux.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(shared) = slot.upgrade() {
        let multiplex = Multiplex::from_shared(shared);
        if !multiplex.is_closed() {
            return multiplex;
        }
    }
    let multiplex = Multiplex::start(inner.clone());
    *slot = multiplex.downgrade();
    multiplex
}

impl Inner {
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
}

/// Reads the streaming URL from the instance endpoints.
async fn discover(inner: &Inner) -> Result<Url, Error> {
    for (path, pointer) in [
        ("/api/v2/instance", "/configuration/urls/streaming"),
        ("/api/v1/instance", "/urls/streaming_api"),
    ] {
        let mut url = inner.server.clone();
        url.set_path(path);
        let response = match inner
            .http
            .get(url)
            .timeout(inner.request_timeout)
            .send()
            .await
        {
            Ok(response) => response,
            Err(error) if error.is_connect() || error.is_timeout() => {
                return Err(http::network(error));
            }
            Err(_) => continue,
        };
        if !response.status().is_success() {
            continue;
        }
        let Ok(bytes) = response.bytes().await else {
            continue;
        };
        let Ok(body) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
            continue;
        };
        if let Some(found) = body.pointer(pointer).and_then(|v| v.as_str())
            && !found.is_empty()
        {
            tracing::debug!(streaming = found, "discovered the streaming host");
            return parse_base_url(found);
        }
    }
    Ok(inner.server.clone())
}
