//! The consumer's side of a running stream, whatever runs it: its own
//! connection task (SSE), a subscription on a shared WebSocket, or a
//! catch-up stage in front of either. Every front-end reads items here, so
//! the rules about what ends a stream live in one place.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

#[cfg(feature = "websocket")]
use tokio::sync::mpsc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::Error;
use crate::item::Item;
use crate::state::ConnectionState;
use crate::transport::batch::Batch;
use crate::transport::queue::{Signal, SignalRx};
use mastostream_proto::{Channel, StreamItem};

/// A running stream, as its consumer holds it. Dropping it closes the stream.
#[derive(Debug)]
pub(crate) struct TaskHandle {
    pub channel: Channel,
    pub signals: SignalRx,
    pub state: watch::Receiver<ConnectionState>,
    pub receiving: Arc<AtomicBool>,
    pub closer: Closer,
    /// The stream's own task, aborted on drop (none for a WebSocket subscription).
    pub task: Option<JoinHandle<()>>,
    /// Keeps a shared WebSocket alive while this subscription is.
    #[cfg(feature = "websocket")]
    pub keep_alive: Option<Arc<crate::transport::mux::MuxShared>>,
    /// With reconnect off, a malformed event ends the stream (as
    /// Mastodon.py's streams end), and this is the one place that says so.
    pub malformed_ends: bool,
    /// Whether heartbeats are handed on as [`Item::Heartbeat`].
    pub heartbeats: bool,
    /// Events are taken with [`Event::on_demand`](mastostream_proto::Event::on_demand).
    pub on_demand: bool,
    batch: Option<Batch>,
    ended: bool,
}

impl TaskHandle {
    /// A handle over `signals`; see the fields for the rest.
    pub fn new(
        channel: Channel,
        signals: SignalRx,
        state: watch::Receiver<ConnectionState>,
        receiving: Arc<AtomicBool>,
        closer: Closer,
        malformed_ends: bool,
    ) -> Self {
        TaskHandle {
            channel,
            signals,
            state,
            receiving,
            closer,
            task: None,
            #[cfg(feature = "websocket")]
            keep_alive: None,
            malformed_ends,
            heartbeats: false,
            on_demand: false,
            batch: None,
            ended: false,
        }
    }

    /// Whether bytes are arriving on an open connection.
    pub fn is_receiving(&self) -> bool {
        self.receiving.load(Ordering::Relaxed) && self.state.borrow().is_open()
    }

    /// The next item; `Some(Err)` is the end, and `None` follows it.
    pub fn poll_item(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Item, Error>>> {
        if self.ended {
            return Poll::Ready(None);
        }
        loop {
            if let Some(batch) = &mut self.batch {
                match batch.next_item(self.on_demand) {
                    Some(Ok(StreamItem::Event(event))) => {
                        return Poll::Ready(Some(Ok(Item::Event(event))));
                    }
                    Some(Ok(StreamItem::Heartbeat)) if self.heartbeats => {
                        return Poll::Ready(Some(Ok(Item::Heartbeat)));
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(error)) => return Poll::Ready(Some(self.skipped(error))),
                    None => self.batch = None,
                }
            }
            let signal = match self.signals.poll_signal(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    self.ended = true;
                    return Poll::Ready(None);
                }
                Poll::Ready(Some(signal)) => signal,
            };
            match signal {
                Signal::Batch(batch) => self.batch = Some(batch),
                Signal::Item(Item::Skipped(error)) => {
                    return Poll::Ready(Some(self.skipped(error)));
                }
                Signal::Item(Item::Heartbeat) if !self.heartbeats => continue,
                Signal::Item(item) => return Poll::Ready(Some(Ok(item))),
                Signal::Ended(error) => {
                    self.ended = true;
                    return Poll::Ready(Some(Err(error)));
                }
            }
        }
    }

    /// Waits for the next item.
    pub async fn next_item(&mut self) -> Option<Result<Item, Error>> {
        std::future::poll_fn(|cx| self.poll_item(cx)).await
    }

    /// A malformed event: skipped, or the end when reconnect is off.
    fn skipped(&mut self, error: Error) -> Result<Item, Error> {
        if self.malformed_ends {
            self.ended = true;
            self.batch = None;
            self.closer.close();
            return Err(error);
        }
        Ok(Item::Skipped(error))
    }
}

/// Stops one stream, from any thread, without a runtime.
#[derive(Debug, Clone)]
pub(crate) enum Closer {
    /// A connection task (or a catch-up stage) watches this switch.
    Task(Arc<watch::Sender<bool>>),
    /// A WebSocket subscription is ended by its multiplexer.
    #[cfg(feature = "websocket")]
    Subscription(mpsc::UnboundedSender<crate::transport::mux::Command>, u64),
}

impl Closer {
    /// Ends the stream; the task (or multiplexer) then drops its end of the queue.
    pub fn close(&self) {
        match self {
            Closer::Task(cancel) => {
                cancel.send_replace(true);
            }
            #[cfg(feature = "websocket")]
            Closer::Subscription(commands, id) => {
                let _ = commands.send(crate::transport::mux::Command::Unsubscribe { id: *id });
            }
        }
    }
}

impl Drop for TaskHandle {
    fn drop(&mut self) {
        // Neither needs a runtime context, unlike spawning.
        self.closer.close();
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// A stream that could not start: it yields `error` and ends.
pub(crate) fn failed(channel: Channel, error: Error) -> TaskHandle {
    let (tx, signals) = crate::transport::queue::queue(0);
    tx.push(Signal::Ended(error.clone()));
    let (_, state) = watch::channel(ConnectionState::Closed(Some(error)));
    let (cancel, _) = watch::channel(false);
    TaskHandle::new(
        channel,
        signals,
        state,
        Arc::new(AtomicBool::new(false)),
        Closer::Task(Arc::new(cancel)),
        false,
    )
}
