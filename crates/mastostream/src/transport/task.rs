//! The SSE connection task: connects, reads, detects stalls, reconnects per
//! the policy, and queues everything for its consumer without waiting on it.
//!
//! One task per stream. It owns the socket; the consumer holds the
//! [`TaskHandle`]: the queue's other end and a cancel switch.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::Error;
use crate::item::Item;
use crate::state::ConnectionState;
use crate::transport::batch::{Batch, RawItem};
use crate::transport::context::{Context, Transport};
use crate::transport::handle::{Closer, TaskHandle};
#[cfg(feature = "websocket")]
use crate::transport::mux;
use crate::transport::queue::{Overflow, Pushed, Signal, SignalTx, queue};
use crate::transport::race::{self, First};
use crate::transport::{http, sse};
use mastostream_proto::{
    Action, Channel, Liveness, LivenessEvent, ReconnectPolicy, Reconnector, SseDecoder, SseItem,
    sse_error,
};

/// The shortest stall timeout an SSE stream uses: Mastodon writes a
/// heartbeat every 15 s, so anything shorter takes a quiet, healthy stream
/// for dead (5 s gave 10 needless reconnects in 135 s). Shorter settings are
/// raised to this over SSE; the WebSocket probes with its own pings instead.
pub(crate) const MIN_SSE_STALL_TIMEOUT: Duration = Duration::from_secs(20);

/// Starts the SSE task for `channel` on `runtime`.
pub(crate) fn spawn_on(
    runtime: &tokio::runtime::Handle,
    context: Arc<Context>,
    channel: Channel,
) -> TaskHandle {
    let (tx, signals) = queue(context.queue_limit);
    let (state_tx, state) = watch::channel(ConnectionState::Connecting);
    let (cancel, cancel_rx) = watch::channel(false);
    let receiving = Arc::new(AtomicBool::new(false));
    let malformed_ends = context.settings.reconnect == ReconnectPolicy::Off;
    let task = Task {
        context,
        channel: channel.clone(),
        tx,
        state: state_tx,
        receiving: receiving.clone(),
        cancel: cancel_rx,
        ever_opened: false,
    };
    let task = runtime.spawn(task.run());
    let mut handle = TaskHandle::new(
        channel,
        signals,
        state,
        receiving,
        Closer::Task(Arc::new(cancel)),
        malformed_ends,
    );
    handle.task = Some(task);
    handle
}

/// A seed for a reconnector's jitter, different for every stream.
pub(crate) fn jitter_seed() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}

struct Task {
    context: Arc<Context>,
    channel: Channel,
    tx: SignalTx,
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
    /// The user closed the stream, or the consumer went away.
    Cancelled,
    /// The connection failed.
    Failed(Error),
    /// SSE does not work here (auto transport): carry on over the WebSocket.
    FallBack(Error),
}

impl Task {
    async fn run(mut self) {
        let settings = self.context.settings.clone();
        let mut reconnector = Reconnector::new(settings.reconnect.clone(), jitter_seed())
            .stable_after(settings.stable_after);
        loop {
            let stop = self.connect_and_read(&mut reconnector).await;
            self.receiving.store(false, Ordering::Relaxed);
            let error = match stop {
                Stop::Cancelled => return self.finish(None),
                #[cfg(feature = "websocket")]
                Stop::FallBack(error) => {
                    tracing::info!(%error, stream = %self.channel, "SSE unusable here; switching to the WebSocket");
                    return self.forward_websocket().await;
                }
                // Without the WebSocket there is nothing to fall back to.
                #[cfg(not(feature = "websocket"))]
                Stop::FallBack(error) => error,
                Stop::Failed(error) => error,
            };
            match reconnector.on_disconnect(Instant::now().into_std(), &error) {
                Action::GiveUp => return self.finish(Some(error)),
                Action::Reconnect { delay, attempt } => {
                    tracing::debug!(%error, attempt, ?delay, "stream broke; reconnecting");
                    self.set_state(ConnectionState::Reconnecting {
                        attempt,
                        delay,
                        reason: error,
                    });
                    // `sleep` saturates a deadline past the clock's end.
                    let waited = race::first_of_three(
                        tokio::time::sleep(delay),
                        cancelled(&mut self.cancel),
                        self.tx.closed(),
                    )
                    .await;
                    match waited {
                        First::A(()) => {}
                        First::B(_) => return self.finish(None),
                        First::C(()) => return,
                    }
                }
                _ => return self.finish(Some(error)),
            }
        }
    }

    /// Carries the stream on over the shared WebSocket, passing its signals
    /// and state through, until it ends or this stream is closed.
    #[cfg(feature = "websocket")]
    async fn forward_websocket(&mut self) {
        // A connection of its own, as SSE had: not every server that serves
        // no SSE can multiplex (see `MuxHandle::subscribe_own`).
        let mut subscription =
            mux::MuxHandle::subscribe_own(self.context.clone(), self.channel.clone(), false);
        loop {
            let signal = match race::first_of_three(
                subscription.signals.recv(),
                cancelled(&mut self.cancel),
                self.tx.closed(),
            )
            .await
            {
                First::A(signal) => signal,
                First::B(_) => None,
                First::C(()) => return,
            };
            let Some(signal) = signal else {
                return self.finish(None);
            };
            self.state.send_replace(subscription.state.borrow().clone());
            self.receiving.store(
                subscription.receiving.load(Ordering::Relaxed),
                Ordering::Relaxed,
            );
            let last = matches!(signal, Signal::Ended(_));
            let pushed = match signal {
                Signal::Batch(batch) => self.tx.push_events(batch, Overflow::Hold),
                other => {
                    if self.tx.push(other) {
                        Pushed::Queued
                    } else {
                        Pushed::Gone
                    }
                }
            };
            match pushed {
                Pushed::Gone => return,
                _ if last => return,
                // The subscription is alone here: hold it while this consumer catches up.
                Pushed::Full => {
                    let waited = race::first(self.tx.room(), cancelled(&mut self.cancel)).await;
                    if matches!(waited, First::B(_)) {
                        return self.finish(None);
                    }
                }
                _ => {}
            }
        }
    }

    /// The stream is over: closed by the user (`None`) or ended by `error`.
    fn finish(&mut self, error: Option<Error>) {
        self.state
            .send_replace(ConnectionState::Closed(error.clone()));
        if let Some(error) = error {
            self.tx.push(Signal::Ended(error));
        }
    }

    fn set_state(&mut self, state: ConnectionState) {
        self.state.send_replace(state.clone());
        if let Some(item) = state.as_item() {
            self.tx.push(Signal::Item(item));
        }
    }

    async fn connect_and_read(&mut self, reconnector: &mut Reconnector) -> Stop {
        self.set_state(ConnectionState::Connecting);
        let context = self.context.clone();
        let channel = self.channel.clone();
        let opening = async {
            let base = context.streaming_base().await?;
            context.check_stream(&channel)?;
            sse::open(&context, &base, &channel).await
        };
        let auto = self.context.transport == Transport::Auto;
        // Mastodon answers at once. A proxy that buffers the stream (nginx
        // with `proxy_buffering on` and HTTP/1.0 to the upstream, gzip on
        // event streams) holds the response head as well as the body: past
        // the greeting timeout that is told, and Auto moves to the WebSocket.
        let greeting = self.context.settings.greeting_timeout;
        let mut opening = std::pin::pin!(opening);
        let mut warned = false;
        let opened = loop {
            let stopped = race::first(cancelled(&mut self.cancel), self.tx.closed());
            let timer = async {
                if warned {
                    std::future::pending::<()>().await;
                }
                tokio::time::sleep(greeting).await;
            };
            match race::first_of_three(stopped, opening.as_mut(), timer).await {
                First::A(_) => return Stop::Cancelled,
                First::B(opened) => break opened,
                First::C(()) => {
                    warned = true;
                    tracing::warn!(
                        waited = ?greeting,
                        "the stream's request has had no answer yet; a buffering proxy in the way?"
                    );
                    if auto && !self.ever_opened {
                        return Stop::FallBack(Error::Network {
                            message: format!(
                                "no answer on SSE after {}",
                                crate::state::human_duration(greeting)
                            ),
                            source: None,
                        });
                    }
                }
            }
        };
        let mut response = match opened {
            Ok(response) => response,
            Err(error) if auto && !self.ever_opened && sse_unusable(&error) => {
                return Stop::FallBack(error);
            }
            Err(error) => return Stop::Failed(error),
        };
        self.ever_opened = true;
        reconnector.on_connected(Instant::now().into_std());
        self.set_state(ConnectionState::Open);
        let settings = &self.context.settings;
        let stall = settings.stall_timeout.map(|t| t.max(MIN_SSE_STALL_TIMEOUT));
        let mut liveness = Liveness::new(
            Instant::now().into_std(),
            stall,
            Some(settings.greeting_timeout),
        );
        let mut decoder = SseDecoder::with_max_event_size(settings.max_event_size);
        loop {
            let deadline = liveness.poll_timeout().map(Instant::from_std);
            let stopped = race::first(cancelled(&mut self.cancel), self.tx.closed());
            let chunk = match race::first_of_three(
                stopped,
                response.chunk(),
                super::sleep_until_or_never(deadline),
            )
            .await
            {
                First::A(_) => return Stop::Cancelled,
                First::B(chunk) => chunk,
                First::C(()) => {
                    match liveness.handle_timeout(Instant::now().into_std()) {
                        Some(LivenessEvent::Stalled { silent_for }) => {
                            return Stop::Failed(Error::Stalled { silent_for });
                        }
                        Some(LivenessEvent::NoGreeting { waited }) => {
                            tracing::warn!(
                                waited = ?waited,
                                "the stream opened but sent nothing yet; a buffering proxy in the way?"
                            );
                            if auto {
                                return Stop::FallBack(Error::Network {
                                    message: format!(
                                        "no greeting on SSE after {}",
                                        crate::state::human_duration(waited)
                                    ),
                                    source: None,
                                });
                            }
                        }
                        _ => {}
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
            let mut batch = Batch::new();
            let mut full = false;
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
                let earlier = std::mem::take(&mut batch);
                if !earlier.is_empty() {
                    full |= self.tx.push_events(earlier, Overflow::Hold) == Pushed::Full;
                }
                tracing::debug!(%error, "skipped a malformed event");
                self.tx.push(Signal::Item(Item::Skipped(error)));
            }
            if !batch.is_empty() {
                full |= self.tx.push_events(batch, Overflow::Hold) == Pushed::Full;
            }
            if full {
                // Alone on this connection, the consumer holds nobody up:
                // read no more until it catches up, and TCP pushes back.
                let waited = race::first(self.tx.room(), cancelled(&mut self.cancel)).await;
                if matches!(waited, First::B(_)) {
                    return Stop::Cancelled;
                }
                // Time spent waiting on the consumer is not the server's silence.
                liveness.handle_bytes(Instant::now().into_std());
            }
        }
    }
}

/// Resolves once the stream is closed by its handle (or the handle is gone).
async fn cancelled(cancel: &mut watch::Receiver<bool>) {
    let _ = cancel.wait_for(|c| *c).await;
}
