//! Starting and driving a test server, from async or blocking code.

use std::collections::HashSet;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::auth::TokenPolicy;
use crate::control;
use crate::faults::Fault;
use crate::flavour::Flavour;
use crate::hub::{ConnectionInfo, Hub};
use crate::publish::Publish;
use crate::replay::{self, PreparedReplay};
use crate::router;
use crate::state::{AppState, Settings};
use crate::store::DEFAULT_CAPACITY;
use crate::tls::{TlsIdentity, TlsListener};

/// Settings for a [`TestServer`]; see [`TestServer::builder`].
#[derive(Debug, Clone)]
pub struct TestServerBuilder {
    addr: SocketAddr,
    heartbeat: Duration,
    ping_interval: Duration,
    tokens: HashSet<String>,
    streaming_url: Option<String>,
    replay: Option<(Vec<Publish>, f64)>,
    capacity: usize,
    flavour: Flavour,
    tls: Option<TlsIdentity>,
    robots: Option<String>,
    timeline_preview: bool,
}

impl Default for TestServerBuilder {
    fn default() -> Self {
        TestServerBuilder {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            heartbeat: Duration::from_secs(15),
            ping_interval: Duration::from_secs(30),
            tokens: HashSet::new(),
            streaming_url: None,
            replay: None,
            capacity: DEFAULT_CAPACITY,
            flavour: Flavour::Mastodon,
            tls: None,
            robots: None,
            timeline_preview: true,
        }
    }
}

impl TestServerBuilder {
    /// Serves `text` as `/robots.txt` (without it, 404).
    pub fn robots(mut self, text: impl Into<String>) -> Self {
        self.robots = Some(text.into());
        self
    }

    /// Whether the public timelines answer without a token (default yes;
    /// Mastodon's `timeline_preview` off answers 422 "This method requires
    /// an authenticated user").
    pub fn timeline_preview(mut self, on: bool) -> Self {
        self.timeline_preview = on;
        self
    }

    /// The address to listen on (default `127.0.0.1:0`, a free port).
    pub fn addr(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// Time between SSE heartbeats (default 15 s, as Mastodon).
    pub fn heartbeat(mut self, interval: Duration) -> Self {
        self.heartbeat = interval.max(Duration::from_millis(1));
        self
    }

    /// Time between WebSocket pings (default 30 s, as Mastodon).
    pub fn ping_interval(mut self, interval: Duration) -> Self {
        self.ping_interval = interval.max(Duration::from_millis(1));
        self
    }

    /// Accepts this token; once any is given, only the given ones are
    /// accepted (by default any non-empty token is).
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.tokens.insert(token.into());
        self
    }

    /// Which server the WebSocket behaves as (default Mastodon): how it
    /// labels events and answers commands; see [`Flavour`].
    pub fn flavour(mut self, flavour: Flavour) -> Self {
        self.flavour = flavour;
        self
    }

    /// The streaming URL the instance endpoints advertise (default: this server).
    pub fn streaming_url(mut self, url: impl Into<String>) -> Self {
        self.streaming_url = Some(url.into());
        self
    }

    /// Replays `events` in a loop: at `rate` events per second through every
    /// connection, each stamped as a live server would send it (fresh ids,
    /// `created_at` now; [`Stamp::Live`](crate::Stamp::Live)) unless it is
    /// [`verbatim`](Publish::verbatim); or with `rate` 0 to each connection
    /// as fast as it reads, framed once and sent as recorded (stamping each
    /// event anew for every connection would cost what that mode measures).
    pub fn replay(mut self, events: Vec<Publish>, rate: f64) -> Self {
        self.replay = Some((events, rate));
        self
    }

    /// How many statuses, notifications and conversations the REST side keeps.
    pub fn store_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// Serves HTTPS (and `wss://`) with `identity`: ALPN offers h2 and
    /// HTTP/1.1, so SSE and REST may run over HTTP/2.
    /// [`TlsIdentity::self_signed`] makes one whose CA
    /// ([`TestServer::ca_pem`]) a client then trusts.
    pub fn tls(mut self, identity: TlsIdentity) -> Self {
        self.tls = Some(identity);
        self
    }

    /// Binds and starts serving on the current tokio runtime.
    pub async fn start(self) -> io::Result<TestServer> {
        let tls_config = self
            .tls
            .as_ref()
            .map(TlsIdentity::server_config)
            .transpose()?;
        let listener = TcpListener::bind(self.addr).await?;
        let addr = listener.local_addr()?;
        let hub = Arc::new(Hub::new(self.capacity, self.flavour));
        let tokens = if self.tokens.is_empty() {
            TokenPolicy::AnyNonEmpty
        } else {
            TokenPolicy::Only(self.tokens)
        };
        let (paced, rated) = match self.replay {
            Some((events, rate)) if rate <= 0.0 => {
                (Some(Arc::new(PreparedReplay::new(&events))), None)
            }
            Some((events, rate)) => (None, Some((events, rate))),
            None => (None, None),
        };
        let state = AppState {
            hub: hub.clone(),
            settings: Arc::new(Settings {
                heartbeat: self.heartbeat,
                ping_interval: self.ping_interval,
                tokens,
                streaming_url: self.streaming_url,
                flavour: self.flavour,
                secure: tls_config.is_some(),
                robots: self.robots,
                timeline_preview: self.timeline_preview,
            }),
            paced_replay: paced,
        };
        if let Some((events, rate)) = rated {
            tokio::spawn(replay::run_rated(Arc::downgrade(&hub), events, rate));
        }
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let router = router::router(state.clone());
        let stop_hub = hub.clone();
        let counter = hub.clone();
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stop_rx.await;
                // Open streams never end by themselves: cut them so the server can stop.
                stop_hub.faults.disconnect_all();
            };
            match tls_config {
                Some(config) => {
                    let Ok(listener) = TlsListener::new(listener, config) else {
                        return;
                    };
                    let listener = listener.tap_io(move |_| counter.traffic.connection_accepted());
                    let _ = axum::serve(listener, router)
                        .with_graceful_shutdown(shutdown)
                        .await;
                }
                None => {
                    // Like Node's HTTP server (Mastodon's), no Nagle delay: an event
                    // goes out in two writes, and the second must not wait for an ACK.
                    let listener = listener.tap_io(move |tcp| {
                        let _ = tcp.set_nodelay(true);
                        counter.traffic.connection_accepted();
                    });
                    let _ = axum::serve(listener, router)
                        .with_graceful_shutdown(shutdown)
                        .await;
                }
            }
        });
        Ok(TestServer {
            tls: self.tls,
            addr,
            state,
            stop: Some(stop_tx),
            task: Some(task),
        })
    }

    /// Starts the server on a runtime of its own, for blocking tests.
    pub fn start_blocking(self) -> io::Result<BlockingTestServer> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("mastostream-testkit")
            .enable_all()
            .build()?;
        let server = runtime.block_on(self.start())?;
        Ok(BlockingTestServer {
            server: Some(server),
            runtime: Some(runtime),
        })
    }
}

/// A running Mastodon-compatible streaming server on loopback.
///
/// Dropping it stops it; [`shutdown`](Self::shutdown) also waits for that.
pub struct TestServer {
    tls: Option<TlsIdentity>,
    addr: SocketAddr,
    state: AppState,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for TestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl TestServer {
    /// A builder with Mastodon's defaults, listening on `127.0.0.1:0`.
    pub fn builder() -> TestServerBuilder {
        TestServerBuilder::default()
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR` (`https://ADDR` with TLS), the base URL for clients.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// The CA to trust for this server's certificate, PEM, when it serves
    /// TLS with a certificate it made ([`TlsIdentity::self_signed`]).
    pub fn ca_pem(&self) -> Option<&str> {
        self.tls.as_ref().and_then(|tls| tls.ca_pem.as_deref())
    }

    /// Delivers an event (see [`Publish`]); returns how many subscriptions got it.
    pub fn publish(&self, publish: Publish) -> usize {
        self.state.hub.publish(publish)
    }

    /// Injects a fault; returns how many connections it touched.
    pub fn fault(&self, fault: Fault) -> Result<usize, String> {
        control::apply(&self.state, fault)
    }

    /// The open streaming connections.
    pub fn connections(&self) -> Vec<ConnectionInfo> {
        self.state.hub.connections()
    }

    /// Waits until `ready` holds for the open connections, checked again
    /// each time a connection opens, closes, subscribes or unsubscribes (a
    /// signal from the server, not polling); false on timeout.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        mut ready: impl FnMut(&[ConnectionInfo]) -> bool,
    ) -> bool {
        self.wait_for_hub(timeout, || ready(&self.state.hub.connections()))
            .await
    }

    /// Waits until the server has answered at least `count` REST timeline
    /// requests in all (with a page, or a refusal fault) (a client's catch-up fetching its starting point, say);
    /// false on timeout.
    pub async fn wait_for_pages(&self, count: u64, timeout: Duration) -> bool {
        self.wait_for_hub(timeout, || self.state.hub.pages_served() >= count)
            .await
    }

    /// How many TCP connections the server has accepted (over TLS: with the
    /// handshake done).
    pub fn connections_accepted(&self) -> u64 {
        self.state.hub.traffic.connections_accepted()
    }

    /// The requests the server has received (the latest 4096), oldest first,
    /// each with its HTTP version.
    pub fn requests(&self) -> Vec<crate::RequestInfo> {
        self.state.hub.traffic.requests()
    }

    /// How many REST timeline pages the server has answered.
    pub fn pages_served(&self) -> u64 {
        self.state.hub.pages_served()
    }

    /// Waits until `ready` holds, checked again at each signal from the hub.
    async fn wait_for_hub(&self, timeout: Duration, mut ready: impl FnMut() -> bool) -> bool {
        let mut changes = self.state.hub.watch_changes();
        let settled = async {
            loop {
                changes.borrow_and_update();
                if ready() {
                    return;
                }
                if changes.changed().await.is_err() {
                    // The hub lives as long as the server; nothing will change.
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::time::timeout(timeout, settled).await.is_ok()
    }

    /// Waits until at least `count` streaming connections are open; false on timeout.
    pub async fn wait_for_connections(&self, count: usize, timeout: Duration) -> bool {
        self.wait_until(timeout, |open| open.len() >= count).await
    }

    /// Waits until the open connections hold at least `count` subscriptions
    /// in all (an SSE connection holds one); false on timeout.
    pub async fn wait_for_subscriptions(&self, count: usize, timeout: Duration) -> bool {
        self.wait_until(timeout, |open| {
            open.iter().map(|c| c.streams.len()).sum::<usize>() >= count
        })
        .await
    }

    /// Stops accepting, drops every open stream and waits for the server to end.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        // Sending on a oneshot needs no runtime, so this is safe anywhere.
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A [`TestServer`] with its own runtime, for tests without one.
pub struct BlockingTestServer {
    server: Option<TestServer>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for BlockingTestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockingTestServer")
            .field("server", &self.server)
            .finish()
    }
}

impl BlockingTestServer {
    fn server(&self) -> &TestServer {
        self.server.as_ref().expect("server is present until drop")
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.server().addr()
    }

    /// See [`TestServer::url`].
    pub fn url(&self) -> String {
        self.server().url()
    }

    /// See [`TestServer::ca_pem`].
    pub fn ca_pem(&self) -> Option<&str> {
        self.server().ca_pem()
    }

    /// See [`TestServer::publish`].
    pub fn publish(&self, publish: Publish) -> usize {
        self.server().publish(publish)
    }

    /// See [`TestServer::fault`].
    pub fn fault(&self, fault: Fault) -> Result<usize, String> {
        self.server().fault(fault)
    }

    /// See [`TestServer::connections`].
    pub fn connections(&self) -> Vec<ConnectionInfo> {
        self.server().connections()
    }

    /// See [`TestServer::wait_for_connections`].
    pub fn wait_for_connections(&self, count: usize, timeout: Duration) -> bool {
        self.block_on(self.server().wait_for_connections(count, timeout))
    }

    /// See [`TestServer::wait_until`].
    pub fn wait_until(
        &self,
        timeout: Duration,
        ready: impl FnMut(&[ConnectionInfo]) -> bool,
    ) -> bool {
        self.block_on(self.server().wait_until(timeout, ready))
    }

    /// See [`TestServer::wait_for_subscriptions`].
    pub fn wait_for_subscriptions(&self, count: usize, timeout: Duration) -> bool {
        self.block_on(self.server().wait_for_subscriptions(count, timeout))
    }

    /// See [`TestServer::wait_for_pages`].
    pub fn wait_for_pages(&self, count: u64, timeout: Duration) -> bool {
        self.block_on(self.server().wait_for_pages(count, timeout))
    }

    fn block_on<T>(&self, future: impl std::future::Future<Output = T>) -> T {
        self.runtime
            .as_ref()
            .expect("runtime is present until drop")
            .block_on(future)
    }
}

impl Drop for BlockingTestServer {
    fn drop(&mut self) {
        drop(self.server.take());
        if let Some(runtime) = self.runtime.take() {
            // Safe even when dropped inside another runtime.
            runtime.shutdown_background();
        }
    }
}
