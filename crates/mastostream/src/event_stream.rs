//! The async front-end: a stream's items as a `futures::Stream`.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream as FuturesStream;
use tokio::sync::watch;

use crate::Error;
use crate::item::Item;
use crate::state::ConnectionState;
use crate::transport::handle::TaskHandle;
use mastostream_proto::{Channel, Event};

/// A stream's items, as a `futures::Stream<Item = Result<Item, Error>>`.
///
/// Only what ends the stream is an `Err`, and it is the last item: a fatal
/// refusal (401, 404…), giving up after the reconnect policy's last attempt,
/// or, with reconnect off, the first break or malformed event. Everything
/// transient — reconnecting, connected again, a skipped event, events lost
/// by a consumer that fell behind — is an `Ok` [`Item`], so the idiomatic
/// loop is right:
///
/// ```no_run
/// # async fn run(mut events: mastostream::EventStream) -> Result<(), mastostream::Error> {
/// use futures_util::TryStreamExt;
///
/// while let Some(item) = events.try_next().await? {
///     if let mastostream::Item::Event(event) = item {
///         println!("{}", event.name());
///     }
/// }
/// # Ok(()) }
/// ```
///
/// or, for events alone, `while let Some(event) = events.next_event().await? {}`.
/// Dropping the stream closes the connection (or unsubscribes, on a shared
/// WebSocket).
#[derive(Debug)]
pub struct EventStream {
    handle: TaskHandle,
}

impl EventStream {
    pub(crate) fn new(handle: TaskHandle) -> Self {
        EventStream { handle }
    }

    /// Hands on heartbeats as [`Item::Heartbeat`] too (off by default).
    pub fn with_heartbeats(mut self, on: bool) -> Self {
        self.handle.heartbeats = on;
        self
    }

    /// The next event, skipping the transient items; `Ok(None)` at the end.
    pub async fn next_event(&mut self) -> Result<Option<Event>, Error> {
        while let Some(item) = self.handle.next_item().await {
            if let Item::Event(event) = item? {
                return Ok(Some(event));
            }
        }
        Ok(None)
    }

    /// The connection's state now.
    pub fn state(&self) -> ConnectionState {
        self.handle.state.borrow().clone()
    }

    /// A receiver that changes with the connection's state.
    pub fn watch_state(&self) -> watch::Receiver<ConnectionState> {
        self.handle.state.clone()
    }

    /// Whether bytes are arriving: false while connecting, reconnecting or after a stall.
    pub fn is_receiving(&self) -> bool {
        self.handle.is_receiving()
    }

    /// Closes the connection (or unsubscribes, on a shared WebSocket); the
    /// stream then ends. Returns at once; works from any thread.
    pub fn close(&self) {
        self.handle.closer.close();
    }

    /// The stream these events come from.
    pub fn channel(&self) -> &Channel {
        &self.handle.channel
    }
}

impl FuturesStream for EventStream {
    type Item = Result<Item, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.handle.poll_item(cx)
    }
}
