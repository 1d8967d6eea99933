//! What every handler shares: the server's settings and its hub.
//!
//! Its own module so that imports go one way: the router imports the
//! handlers, and the handlers import this, never the router.

use std::sync::Arc;
use std::time::Duration;

use crate::auth::TokenPolicy;
use crate::hub::Hub;
use crate::replay::PreparedReplay;

/// The server's settings, fixed at start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Time between SSE heartbeats.
    pub heartbeat: Duration,
    /// Time between WebSocket pings.
    pub ping_interval: Duration,
    /// Which tokens are accepted.
    pub tokens: TokenPolicy,
    /// The streaming URL the instance endpoints advertise, when not this server.
    pub streaming_url: Option<String>,
    /// Which server the WebSocket behaves as.
    pub flavour: crate::flavour::Flavour,
    /// Whether it serves TLS (its URLs are `https://` and `wss://`).
    pub secure: bool,
    /// The `/robots.txt` it serves (404 without one).
    pub robots: Option<String>,
    /// Whether the public timelines answer without a token (Mastodon's
    /// `timeline_preview` setting).
    pub timeline_preview: bool,
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// Connections, store and faults.
    pub hub: Arc<Hub>,
    /// Settings.
    pub settings: Arc<Settings>,
    /// A replay streamed to each connection at its own pace (`--rate 0`).
    pub paced_replay: Option<Arc<PreparedReplay>>,
}
