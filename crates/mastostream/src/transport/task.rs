//! The connection task: connects, reads, detects stalls, reconnects per the
//! policy, and hands everything to the front-end over a channel.
//!
//! One task per stream. It owns the socket; the front-ends (async
//! [`EventStream`](crate::EventStream), blocking calls, background handles)
//! own the receiving end and a cancel switch.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::Error;
use crate::client::Inner;
use crate::listener::{StreamListener, dispatch_item};
use crate::proto::sse_error;
use crate::proto::{
    Action, Channel, Liveness, LivenessEvent, ReconnectPolicy, Reconnector, SseDecoder, SseItem,
    StreamItem,
};
use crate::state::ConnectionState;
use crate::transport::batch::{Batch, RawItem};
use crate::transport::{http, sse};

/// How many signals may wait for a slow consumer before the task stops
/// reading (and TCP pushes back on the server). A signal carries at most one
/// read's events (an HTTP chunk, or one WebSocket frame), so this bounds what
/// a stream holds: 1,000 slow SSE streams took 2 GiB at 256. Too few, and a
/// consumer that is not reading holds up reconnecting: each attempt queues
/// its state changes and error.
pub(crate) const SIGNAL_QUEUE: usize = 32;

/// What the task tells its front-end, in order.
#[derive(Debug)]
pub(crate) enum Signal {
    /// Events and heartbeats of one read, parsed by the consumer.
    Batch(Batch),
    /// An event or a heartbeat, parsed already.
    Item(StreamItem),
    /// An event that could not be decoded; the stream goes on.
    Malformed(Error),
    /// The connection broke or could not be made; a reconnect follows.
    Abort(Error),
    /// The connection state changed.
    State(ConnectionState),
    /// The stream ended with this error; nothing follows.
    Ended(Error),
}

/// The front-end's side of a running stream: its own task (SSE) or a
/// subscription on a shared WebSocket.
#[derive(Debug)]
pub(crate) struct TaskHandle {
    pub stream: Channel,
    pub signals: mpsc::Receiver<Signal>,
    pub state: watch::Receiver<ConnectionState>,
    pub receiving: Arc<AtomicBool>,
    pub closer: Closer,
    /// The stream's own task, aborted on drop (none for a WebSocket subscription).
    pub task: Option<JoinHandle<()>>,
    /// Keeps a shared WebSocket alive while this subscription is.
    pub _keep_alive: Option<Arc<crate::transport::mux::MuxShared>>,
}

/// Stops one stream, from any thread.
#[derive(Debug, Clone)]
pub(crate) enum Closer {
    /// An SSE stream's task watches this switch.
    Task(Arc<watch::Sender<bool>>),
    /// A WebSocket subscription is ended by its multiplexer.
    Subscription(mpsc::UnboundedSender<crate::transport::mux::Command>, u64),
}

impl Closer {
    /// Ends the stream; the task (or multiplexer) then drops its sender.
    pub fn close(&self) {
        match self {
            Closer::Task(cancel) => {
                cancel.send_replace(true);
            }
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

/// Starts the task for `stream` on the current runtime.
pub(crate) fn spawn(inner: Arc<Inner>, stream: Channel) -> TaskHandle {
    spawn_on(&tokio::runtime::Handle::current(), inner, stream)
}

/// Starts the task for `stream` on `runtime`.
pub(crate) fn spawn_on(
    runtime: &tokio::runtime::Handle,
    inner: Arc<Inner>,
    stream: Channel,
) -> TaskHandle {
    let (tx, signals) = mpsc::channel(SIGNAL_QUEUE);
    let (state_tx, state) = watch::channel(ConnectionState::Connecting);
    let (cancel, cancel_rx) = watch::channel(false);
    let receiving = Arc::new(AtomicBool::new(false));
    let task = Task {
        inner,
        stream: stream.clone(),
        tx,
        state: state_tx,
        receiving: receiving.clone(),
        cancel: cancel_rx,
        ever_opened: false,
    };
    let task = runtime.spawn(task.run());
    TaskHandle {
        stream,
        signals,
        state,
        receiving,
        closer: Closer::Task(Arc::new(cancel)),
        task: Some(task),
        _keep_alive: None,
    }
}

/// Hands one signal to a listener; returns the error if the stream ended.
pub(crate) fn deliver<L: StreamListener + ?Sized>(
    signal: Signal,
    listener: &mut L,
) -> Option<Error> {
    match signal {
        Signal::Batch(mut batch) => {
            while let Some(item) = batch.next_item() {
                match item {
                    Ok(item) => dispatch_item(item, listener),
                    Err(error) if batch.malformed_ends() => {
                        listener.on_abort(&error);
                        return Some(error);
                    }
                    Err(error) => listener.on_malformed_event(&error),
                }
            }
        }
        Signal::Item(item) => dispatch_item(item, listener),
        Signal::Malformed(error) => listener.on_malformed_event(&error),
        Signal::Abort(error) => listener.on_abort(&error),
        Signal::State(state) => listener.on_connection_state(&state),
        Signal::Ended(error) => {
            listener.on_abort(&error);
            return Some(error);
        }
    }
    None
}

struct Task {
    inner: Arc<Inner>,
    stream: Channel,
    tx: mpsc::Sender<Signal>,
    state: watch::Sender<ConnectionState>,
    receiving: Arc<AtomicBool>,
    cancel: watch::Receiver<bool>,
    /// An SSE response was ever accepted (auto transport falls back only before).
    ever_opened: bool,
}

/// Whether an SSE failure means the server serves no SSE (for auto transport).
fn sse_unusable(error: &Error) -> bool {
    matches!(
        error,
        Error::Http {
            status: 400 | 404 | 405 | 501,
            ..
        } | Error::NotAStream { .. }
    )
}

/// Why reading stopped.
enum Stop {
    /// The user closed the stream, or the front-end went away.
    Cancelled,
    /// The connection failed.
    Failed(Error),
    /// An event was malformed and reconnect is off: the seed's rule ends the stream.
    Fatal(Error),
    /// SSE does not work here (auto transport): carry on over the WebSocket.
    FallBack(Error),
}

impl Task {
    async fn run(mut self) {
        let settings = self.inner.settings.clone();
        let mut reconnector =
            Reconnector::new(settings.reconnect.clone()).stable_after(settings.stable_after);
        loop {
            let stop = self.connect_and_read(&mut reconnector).await;
            self.receiving.store(false, Ordering::Relaxed);
            let error = match stop {
                Stop::Cancelled => return self.finish(None).await,
                Stop::Fatal(error) => return self.finish(Some(error)).await,
                Stop::FallBack(error) => {
                    tracing::info!(%error, stream = %self.stream, "SSE unusable here; switching to the WebSocket");
                    return self.forward_websocket().await;
                }
                Stop::Failed(error) => error,
            };
            match reconnector.on_disconnect(Instant::now().into_std(), &error) {
                Action::GiveUp => return self.finish(Some(error)).await,
                Action::Reconnect { delay, attempt } => {
                    tracing::debug!(%error, attempt, ?delay, "stream broke; reconnecting");
                    if !self.send(Signal::Abort(error.clone())).await {
                        return;
                    }
                    self.set_state(ConnectionState::Reconnecting {
                        attempt,
                        delay,
                        reason: error,
                    })
                    .await;
                    let cancelled = tokio::select! {
                        _ = tokio::time::sleep(delay) => false,
                        _ = self.cancel.wait_for(|c| *c) => true,
                        _ = self.tx.closed() => return,
                    };
                    if cancelled {
                        return self.finish(None).await;
                    }
                }
            }
        }
    }

    /// Carries the stream on over the client's shared WebSocket, passing its
    /// signals and state through, until it ends or this stream is closed.
    async fn forward_websocket(&mut self) {
        let mut subscription =
            crate::client::shared_multiplex(&self.inner).subscribe_handle(self.stream.clone());
        enum Next {
            Signal(Signal),
            Ended,
            Closed,
            Gone,
        }
        loop {
            let next = tokio::select! {
                signal = subscription.signals.recv() => signal.map_or(Next::Ended, Next::Signal),
                _ = self.cancel.wait_for(|c| *c) => Next::Closed,
                _ = self.tx.closed() => Next::Gone,
            };
            match next {
                Next::Signal(signal) => {
                    self.state.send_replace(subscription.state.borrow().clone());
                    self.receiving.store(
                        subscription.receiving.load(Ordering::Relaxed),
                        Ordering::Relaxed,
                    );
                    let last = matches!(signal, Signal::Ended(_));
                    if !self.send(signal).await || last {
                        return;
                    }
                }
                Next::Ended | Next::Closed => return self.finish(None).await,
                Next::Gone => return,
            }
        }
    }

    async fn finish(&mut self, error: Option<Error>) {
        self.state
            .send_replace(ConnectionState::Closed(error.clone()));
        if let Some(error) = error {
            let _ = self.tx.send(Signal::Ended(error)).await;
        }
    }

    async fn set_state(&mut self, state: ConnectionState) {
        self.state.send_replace(state.clone());
        let _ = self.tx.send(Signal::State(state)).await;
    }

    /// Sends a signal; false when the front-end is gone.
    async fn send(&self, signal: Signal) -> bool {
        self.tx.send(signal).await.is_ok()
    }

    async fn connect_and_read(&mut self, reconnector: &mut Reconnector) -> Stop {
        self.set_state(ConnectionState::Connecting).await;
        let inner = self.inner.clone();
        let stream = self.stream.clone();
        let opened = tokio::select! {
            opened = async {
                let base = inner.streaming_base().await?;
                sse::open(&inner, &base, &stream).await
            } => opened,
            _ = self.cancel.wait_for(|c| *c) => return Stop::Cancelled,
            _ = self.tx.closed() => return Stop::Cancelled,
        };
        let auto = self.inner.transport == crate::client::Transport::Auto;
        let mut response = match opened {
            Ok(response) => response,
            Err(error) if auto && !self.ever_opened && sse_unusable(&error) => {
                return Stop::FallBack(error);
            }
            Err(error) => return Stop::Failed(error),
        };
        self.ever_opened = true;
        reconnector.on_connected(Instant::now().into_std());
        self.set_state(ConnectionState::Open).await;
        let settings = &self.inner.settings;
        let mut liveness = Liveness::new(
            Instant::now().into_std(),
            settings.stall_timeout,
            Some(settings.greeting_timeout),
        );
        let mut decoder = SseDecoder::with_max_event_size(settings.max_event_size);
        let reconnect_off = settings.reconnect == ReconnectPolicy::Off;
        loop {
            let deadline = liveness.poll_timeout().map(Instant::from_std);
            let chunk = tokio::select! {
                biased;
                _ = self.cancel.wait_for(|c| *c) => return Stop::Cancelled,
                _ = self.tx.closed() => return Stop::Cancelled,
                chunk = response.chunk() => chunk,
                _ = super::sleep_until_or_never(deadline) => {
                    match liveness.handle_timeout(Instant::now().into_std()) {
                        Some(LivenessEvent::Stalled { silent_for }) => return Stop::Failed(Error::Stalled { silent_for }),
                        Some(LivenessEvent::NoGreeting { waited }) => {
                            tracing::warn!(
                                waited = ?waited,
                                "the stream opened but sent nothing yet; a buffering proxy in the way?"
                            );
                            if auto {
                                return Stop::FallBack(Error::Network {
                                    message: format!("no greeting on SSE after {waited:?}"),
                                    source: None,
                                });
                            }
                        }
                        None => {}
                    }
                    continue;
                }
            };
            let bytes = match chunk {
                Ok(Some(bytes)) => bytes,
                Ok(None) => {
                    return Stop::Failed(Error::Network {
                        message: "the server ended the stream".into(),
                        source: None,
                    });
                }
                Err(error) => return Stop::Failed(http::network(error)),
            };
            liveness.handle_bytes(Instant::now().into_std());
            self.receiving.store(true, Ordering::Relaxed);
            decoder.feed(&bytes);
            let mut batch = Batch::new(reconnect_off);
            while let Some(item) = decoder.poll_item() {
                let error = match item {
                    SseItem::Message(message) => {
                        batch.push(RawItem::Event {
                            name: message.name,
                            data: Some(message.data),
                        });
                        continue;
                    }
                    SseItem::Heartbeat => {
                        batch.push(RawItem::Heartbeat);
                        continue;
                    }
                    SseItem::Error(error) => sse_error(error),
                    // A kind of item a newer decoder reports: nothing to deliver.
                    _ => continue,
                };
                // What came before the bad event goes first.
                let earlier = std::mem::replace(&mut batch, Batch::new(reconnect_off));
                if !earlier.is_empty() && !self.send(Signal::Batch(earlier)).await {
                    return Stop::Cancelled;
                }
                if reconnect_off {
                    return Stop::Fatal(error);
                }
                tracing::debug!(%error, "skipped a malformed event");
                if !self.send(Signal::Malformed(error)).await {
                    return Stop::Cancelled;
                }
            }
            if !batch.is_empty() && !self.send(Signal::Batch(batch)).await {
                return Stop::Cancelled;
            }
            // Time spent waiting on a slow consumer is not the server's silence.
            liveness.handle_bytes(Instant::now().into_std());
        }
    }
}
