//! The async front-end: a stream's events as a `futures::Stream`.

use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use futures_core::Stream as FuturesStream;
use tokio::sync::watch;

use crate::Error;
use crate::proto::{Event, StreamItem};
use crate::state::ConnectionState;
use crate::transport::batch::Batch;
use crate::transport::task::{Signal, TaskHandle};

/// A stream's events, as a `futures::Stream<Item = Result<Event, Error>>`.
///
/// `Err` items do not end the stream by themselves: a malformed event that
/// was skipped, or a connection that broke and is being remade, is reported
/// and the events go on. After a fatal error (or when reconnect is off, the
/// first break) the error is the last item. Dropping the stream closes the
/// connection.
#[derive(Debug)]
pub struct EventStream {
    handle: TaskHandle,
    /// Events received and not yet taken.
    batch: Option<Batch>,
    ended: bool,
}

impl EventStream {
    pub(crate) fn new(handle: TaskHandle) -> Self {
        EventStream {
            handle,
            batch: None,
            ended: false,
        }
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
        self.handle.receiving.load(Ordering::Relaxed) && self.handle.state.borrow().is_open()
    }

    /// Closes the connection (or unsubscribes, on a shared WebSocket); the stream then ends.
    pub fn close(&self) {
        self.handle.closer.close();
    }

    /// The stream these events come from.
    pub fn stream(&self) -> &crate::proto::Channel {
        &self.handle.stream
    }
}

impl FuturesStream for EventStream {
    type Item = Result<Event, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.ended {
            return Poll::Ready(None);
        }
        loop {
            if let Some(batch) = &mut self.batch {
                match batch.next_item() {
                    Some(Ok(StreamItem::Event(event))) => return Poll::Ready(Some(Ok(event))),
                    Some(Ok(_)) => continue,
                    Some(Err(error)) => {
                        if batch.malformed_ends() {
                            self.ended = true;
                            self.batch = None;
                            self.handle.closer.close();
                        }
                        return Poll::Ready(Some(Err(error)));
                    }
                    None => self.batch = None,
                }
            }
            let signal = match self.handle.signals.poll_recv(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    self.ended = true;
                    return Poll::Ready(None);
                }
                Poll::Ready(Some(signal)) => signal,
            };
            match signal {
                Signal::Batch(batch) => self.batch = Some(batch),
                Signal::Item(StreamItem::Event(event)) => return Poll::Ready(Some(Ok(event))),
                Signal::Item(_) | Signal::State(_) => continue,
                Signal::Malformed(error) | Signal::Abort(error) => {
                    return Poll::Ready(Some(Err(error)));
                }
                Signal::Ended(error) => {
                    self.ended = true;
                    return Poll::Ready(Some(Err(error)));
                }
            }
        }
    }
}
