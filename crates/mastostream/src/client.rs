//! The entry point: a client for one Mastodon server, its streaming host
//! discovered once, and streams opened from it.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use tokio::sync::OnceCell;

use crate::Error;
use crate::event_stream::EventStream;
use crate::listener::{StreamListener, deliver_guarded};
#[cfg(feature = "websocket")]
use crate::multiplex::Multiplex;
use crate::token::Token;
#[cfg(feature = "catch-up")]
use crate::transport::catch_up::CatchUpConfig;
use crate::transport::context::{Context, StreamSettings, Transport, WsAuth, parse_base_url};
use crate::transport::handle::TaskHandle;
#[cfg(feature = "websocket")]
use crate::transport::mux::MuxHandle;
use crate::transport::proxy;
use crate::transport::tls::{TlsConfigs, TlsOptions};
use crate::transport::{self, CatchUpSetting, http};
use mastostream_proto::liveness::{DEFAULT_GREETING_TIMEOUT, DEFAULT_STALL_TIMEOUT};
use mastostream_proto::sse::DEFAULT_MAX_EVENT_SIZE;
use mastostream_proto::{Channel, ProxyRules, ReconnectPolicy, Software};

/// How many bytes of events a consumer's queue holds by default.
pub const DEFAULT_QUEUE_LIMIT: usize = 512 * 1024;

/// A client for one Mastodon server's streaming API. Cheap to clone.
///
/// ```no_run
/// use mastostream::{Channel, Client};
///
/// # async fn run() -> Result<(), mastostream::Error> {
/// let client = Client::builder("https://mastodon.example").token("…").build()?;
/// let mut events = client.stream(Channel::PublicLocal);
/// while let Some(event) = events.next_event().await? {
///     println!("{}", event.name());
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Client {
    pub(crate) inner: Arc<Context>,
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
    server_software: Option<Software>,
    ws_auth: WsAuth,
    queue_limit: usize,
    transport: Transport,
    catch_up: CatchUpSetting,
    settings: StreamSettings,
    tls: TlsOptions,
    proxy: ProxyChoice,
}

/// Where the proxy settings come from.
#[derive(Clone)]
enum ProxyChoice {
    /// `HTTPS_PROXY`, `http_proxy`, `ALL_PROXY`, `NO_PROXY`, as curl reads them.
    Environment,
    /// One proxy for everything (but `NO_PROXY`'s hosts).
    Single(String),
    /// None at all, whatever the environment says.
    Direct,
}

// A proxy URL may carry a password: shown without it.
impl std::fmt::Debug for ProxyChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProxyChoice::Environment => f.write_str("Environment"),
            ProxyChoice::Single(url) => f
                .debug_tuple("Single")
                .field(&mastostream_proto::redact_proxy_url(url))
                .finish(),
            ProxyChoice::Direct => f.write_str("Direct"),
        }
    }
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

    /// How many bytes of events a stream's queue holds for a consumer that
    /// is behind (default 512 KiB). The connection never waits on a consumer.
    /// Past this bound, a subscription that shares its WebSocket with others
    /// loses events and is told so ([`Item::Lagged`](crate::Item::Lagged);
    /// with catch-up on they are fetched back), while the others, the pings
    /// and reconnects go on. A stream alone on its connection holds nobody
    /// up: its connection stops reading until the consumer catches up, and
    /// TCP pushes back on the server; over the WebSocket for at most a
    /// quarter of the stall timeout (10 s at most), so that the server's
    /// pings are answered, and past that it loses events and is told.
    pub fn queue_limit(mut self, bytes: usize) -> Self {
        self.queue_limit = bytes;
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
    /// [`Gap`](mastostream_proto::Gap) event follows each outage.
    #[cfg(feature = "catch-up")]
    pub fn catch_up(mut self, on: bool) -> Self {
        self.catch_up = on.then(Default::default);
        self
    }

    /// Catch-up with these settings.
    #[cfg(feature = "catch-up")]
    pub fn catch_up_with(mut self, config: CatchUpConfig) -> Self {
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
    /// `wss://` or `ws://`). Discovery is also where the client learns which
    /// server software it talks to: on Pleroma or Akkoma, name it with
    /// [`server_software`](Self::server_software) too.
    pub fn streaming_url(mut self, url: impl Into<String>) -> Self {
        self.streaming_url = Some(url.into());
        self
    }

    /// Which server software this is, for a client that does not discover
    /// it (one given [`streaming_url`](Self::streaming_url)); discovery
    /// reads it from the instance document otherwise (what is given here is
    /// kept either way). It decides where the
    /// WebSocket's token goes (Pleroma reads `?access_token=`, Akkoma
    /// `Sec-WebSocket-Protocol`: neither reads the `Authorization` header,
    /// so without this their user streams are anonymous), which streams
    /// need a WebSocket of their own (GoToSocial's all, Akkoma's hashtags
    /// and lists), and which streams the server lacks.
    pub fn server_software(mut self, software: Software) -> Self {
        self.server_software = Some(software);
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
    /// One setting for both transports. Over the WebSocket a silent server
    /// is probed with a ping at half this time, so any value works. Over SSE
    /// the server's heartbeat (every 15 s on Mastodon) is all there is, so a
    /// value below 20 s is raised to 20 s there: shorter would take a quiet,
    /// healthy stream for dead.
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

    /// Trusts the root certificates of a PEM bundle as well (curl's
    /// `--cacert`, but added to the platform's roots rather than replacing
    /// them): a private CA, or a test server's. Checked by
    /// [`build`](Self::build). One TLS setting serves SSE, the WebSocket and
    /// REST alike.
    pub fn add_root_certificates_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.tls.extra_pem.push(pem.into());
        self
    }

    /// Whether the platform's trust store is used (the default: the system's
    /// certificates, or `SSL_CERT_FILE` / `SSL_CERT_DIR` when set). With
    /// `false`, or on a platform without one, the Mozilla roots bundled
    /// with the library are used.
    pub fn platform_roots(mut self, use_them: bool) -> Self {
        self.tls.bundled_roots_only = !use_them;
        self
    }

    /// Replaces the TLS configuration altogether (client certificates, a
    /// custom verifier, pinned roots). Its ALPN list is set per connection:
    /// `h2` and `http/1.1` for HTTP, `http/1.1` for the WebSocket. Use the
    /// [`rustls`](crate::rustls) this crate re-exports.
    pub fn tls_config(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.tls.custom = Some(config);
        self
    }

    /// Whether HTTP/2 is offered to `https://` servers (default `true`):
    /// where the server (or nginx in front of it) takes it, every SSE
    /// stream and REST call of the client shares one connection. `false`
    /// keeps to HTTP/1.1, a connection per stream. The WebSocket is always
    /// HTTP/1.1; plain `http://` is always HTTP/1.1.
    pub fn http2(mut self, offer: bool) -> Self {
        self.tls.http1_only = !offer;
        self
    }

    /// Sends every connection (SSE, REST and the WebSocket, which tunnels
    /// with `CONNECT`) through the HTTP proxy at `url` (`http://host:port`,
    /// with `user:password@` for a proxy that wants credentials), except
    /// to the hosts `NO_PROXY` lists. By default the proxy comes from the
    /// environment, as curl reads it: `https_proxy` / `HTTPS_PROXY`,
    /// `http_proxy`, `all_proxy` / `ALL_PROXY`, `no_proxy` / `NO_PROXY`.
    pub fn proxy(mut self, url: impl Into<String>) -> Self {
        self.proxy = ProxyChoice::Single(url.into());
        self
    }

    /// Connects directly, ignoring any proxy the environment names.
    pub fn no_proxy(mut self) -> Self {
        self.proxy = ProxyChoice::Direct;
        self
    }

    /// Builds each event's entity when it is asked for ([`Event::kind`])
    /// rather than as it arrives (default: as it arrives). The JSON is still
    /// checked on arrival, and a payload that is not JSON is skipped or ends
    /// the stream as always; a payload that is JSON but not the entity (a
    /// required field missing) is then an error from [`Event::kind`] (and
    /// `on_malformed_event` for a listener) instead of a skipped item. For
    /// consumers that read the raw payload ([`Event::payload`]) or a few
    /// fields of it ([`Event::deserialize`]): they never pay for the rest.
    pub fn parse_on_demand(mut self, on: bool) -> Self {
        self.settings.parse_on_demand = on;
        self
    }

    /// The largest event accepted, in bytes (default 1 MiB).
    pub fn max_event_size(mut self, bytes: usize) -> Self {
        self.settings.max_event_size = bytes;
        self
    }

    /// Builds the client. Fails only on an unusable URL or TLS setup (or
    /// the WebSocket asked of a build without the `websocket` feature).
    pub fn build(self) -> Result<Client, Error> {
        if cfg!(not(feature = "websocket")) && self.transport == Transport::WebSocket {
            return Err(Error::Config(
                "Transport::WebSocket needs the `websocket` feature of mastostream".into(),
            ));
        }
        let server = parse_base_url(&self.server)?;
        let streaming_override = self
            .streaming_url
            .as_deref()
            .map(parse_base_url)
            .transpose()?;
        let tls = TlsConfigs::build(&self.tls)?;
        let env = |name: &str| std::env::var(name).ok();
        let proxies = match &self.proxy {
            ProxyChoice::Environment => ProxyRules::from_env(env),
            ProxyChoice::Single(url) => {
                let no_proxy = env("no_proxy").or_else(|| env("NO_PROXY"));
                ProxyRules::single(url.clone(), no_proxy.as_deref())
            }
            ProxyChoice::Direct => ProxyRules::direct(),
        };
        proxy::check_rules(&proxies)?;
        // reqwest's own reading of the environment is off: both transports
        // follow the same rules.
        let mut http = reqwest::Client::builder().no_proxy();
        if self.tls.http1_only {
            http = http.http1_only();
        }
        if !proxies.is_direct() {
            http = http.proxy(proxy::for_reqwest(proxies.clone()));
        }
        let http = http
            .use_preconfigured_tls((*tls.http).clone())
            .user_agent(self.user_agent.clone())
            .connect_timeout(self.connect_timeout)
            .tcp_nodelay(true)
            // An idle pooled connection (after discovery, say) was held open
            // for 90 s beside the WebSocket: idle ones now close after a
            // second. (No pool at all would also keep HTTP/2 from carrying
            // several SSE streams on one connection: hyper finds a shared h2
            // connection in the pool.) A stream's own connection is never idle.
            .pool_idle_timeout(Duration::from_secs(1))
            // reqwest drops `Authorization` when a redirect leaves the host.
            .redirect(reqwest::redirect::Policy::limited(5))
            .build()
            .map_err(|e| Error::Config(e.without_url().to_string()))?;
        Ok(Client {
            inner: Arc::new(Context {
                http,
                user_agent: self.user_agent,
                connect_timeout: self.connect_timeout,
                ws_auth: self.ws_auth,
                queue_limit: self.queue_limit,
                transport: self.transport,
                catch_up: self.catch_up,
                #[cfg(feature = "websocket")]
                shared_mux: Default::default(),
                server,
                token: self.token,
                token_in_query: self.token_in_query,
                streaming_override,
                streaming_base: OnceCell::new(),
                unnamed_software_noted: Default::default(),
                // `Unknown` given is nothing given: discovery may still tell.
                software: match self.server_software.filter(|s| *s != Software::Unknown) {
                    Some(software) => OnceCell::new_with(Some(software)),
                    None => OnceCell::new(),
                },
                request_timeout: self.request_timeout,
                settings: self.settings,
                tls,
                proxies,
            }),
        })
    }
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
            server_software: None,
            ws_auth: WsAuth::Header,
            queue_limit: DEFAULT_QUEUE_LIMIT,
            transport: Transport::Auto,
            catch_up: None,
            settings: StreamSettings {
                reconnect: ReconnectPolicy::default(),
                stable_after: mastostream_proto::reconnect::DEFAULT_STABLE_AFTER,
                stall_timeout: Some(DEFAULT_STALL_TIMEOUT),
                greeting_timeout: DEFAULT_GREETING_TIMEOUT,
                max_event_size: DEFAULT_MAX_EVENT_SIZE,
                parse_on_demand: false,
            },
            tls: TlsOptions::default(),
            proxy: ProxyChoice::Environment,
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
        let request = self.inner.http.get(url).timeout(self.inner.request_timeout);
        let response = http::send(request).await.map_err(http::network)?;
        if !response.status().is_success() {
            return Err(http::status_error(response).await);
        }
        let body = http::body_within(response, 64 * 1024).await?;
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
    /// connection. Call it inside a tokio runtime; outside one the stream
    /// yields an [`Error::Config`] saying so and ends.
    pub fn stream(&self, channel: Channel) -> EventStream {
        EventStream::new(self.open(channel))
    }

    /// Opens a stream with catch-up set for it alone (`None`: off), whatever
    /// the client's default.
    #[cfg(feature = "catch-up")]
    pub fn stream_with_catch_up(&self, channel: Channel, catch_up: CatchUpSetting) -> EventStream {
        EventStream::new(transport::open(&self.inner, channel, catch_up, None))
    }

    /// Opens a stream that resumes after the status `id` (as the server
    /// gave it): when it first connects, what its status timelines hold
    /// after `id` is delivered, caught up, then a [`Gap`](crate::Gap), then
    /// the live events — as after an outage. (The user stream's
    /// notifications have ids of their own: they start where they stand,
    /// and that first gap is incomplete.) Catch-up is on for it, with the
    /// client's settings (or the defaults). For a process that recorded
    /// the last id it handled and starts again, or hands a stream over.
    #[cfg(feature = "catch-up")]
    pub fn stream_resuming(&self, channel: Channel, id: impl Into<String>) -> EventStream {
        let config = self.inner.catch_up.unwrap_or_default();
        EventStream::new(transport::open(
            &self.inner,
            channel,
            Some(config),
            Some(id.into()),
        ))
    }

    pub(crate) fn open(&self, channel: Channel) -> TaskHandle {
        transport::open(&self.inner, channel, self.inner.catch_up, None)
    }

    /// [`open`](Self::open) on `runtime`, from any thread.
    #[cfg(feature = "blocking")]
    pub(crate) fn open_on(&self, runtime: &tokio::runtime::Handle, channel: Channel) -> TaskHandle {
        // Tasks spawned below (connection, multiplexer, catch-up stage) go to `runtime`.
        let _guard = runtime.enter();
        self.open(channel)
    }

    /// A new multiplexed WebSocket: one connection, subscriptions added and
    /// removed at run time. It connects when created, on the current runtime
    /// (made outside one, its subscriptions end at once with an error).
    #[cfg(feature = "websocket")]
    pub fn multiplex(&self) -> Multiplex {
        Multiplex::new(MuxHandle::start(self.inner.clone()))
    }

    /// Streams to a listener until the stream ends: `Ok` once it is closed,
    /// else the error that ended it (with reconnect on, only a fatal one).
    pub async fn stream_to<L: StreamListener + ?Sized>(
        &self,
        channel: Channel,
        listener: &mut L,
    ) -> Result<(), Error> {
        let mut handle = self.open(channel);
        handle.heartbeats = true;
        while let Some(item) = handle.next_item().await {
            if let Some(end) = deliver_guarded(item, listener) {
                return end;
            }
        }
        Ok(())
    }
}
