//! The multiplexed WebSocket, as its user holds it.

use crate::event_stream::EventStream;
use crate::state::ConnectionState;
use crate::transport::mux::MuxHandle;
use mastostream_proto::Channel;

/// A multiplexed WebSocket connection; see [`Client::multiplex`](crate::Client::multiplex).
///
/// Subscriptions come and go at run time on one connection; every live one
/// is re-sent, in the order they were made, after a reconnect. None holds up
/// another: a consumer that falls behind past its queue's bound loses events
/// and is told so ([`Item::Lagged`](crate::Item::Lagged)).
///
/// ```no_run
/// # async fn run(client: mastostream::Client) -> Result<(), mastostream::Error> {
/// use mastostream::Channel;
///
/// let multiplex = client.multiplex();
/// let mut rust = multiplex.subscribe(Channel::Hashtag("rust".into()));
/// let local = multiplex.subscribe(Channel::PublicLocal);
/// drop(local); // unsubscribes; `rust` goes on, on the same connection
/// while let Some(event) = rust.next_event().await? { /* ... */ }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Multiplex {
    handle: MuxHandle,
}

impl Multiplex {
    pub(crate) fn new(handle: MuxHandle) -> Self {
        Multiplex { handle }
    }

    /// Subscribes to a stream; its items arrive on the returned stream.
    /// Dropping (or closing) it unsubscribes.
    pub fn subscribe(&self, channel: Channel) -> EventStream {
        EventStream::new(self.handle.subscribe_handle(channel, false))
    }

    /// The connection's state.
    pub fn state(&self) -> ConnectionState {
        self.handle.state()
    }

    /// A receiver that changes with the connection's state, to wait for
    /// it to open (`wait_for(ConnectionState::is_open)`) rather than poll.
    pub fn watch_state(&self) -> tokio::sync::watch::Receiver<ConnectionState> {
        self.handle.watch_state()
    }

    /// Whether the connection has ended for good (after a fatal error).
    pub fn is_closed(&self) -> bool {
        self.handle.is_closed()
    }
}
