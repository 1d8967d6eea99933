//! The multiplexed WebSocket: one connection, many subscriptions, added and
//! removed at run time, all re-sent after every reconnect.
//!
//! One task owns the socket (as async-nats' connection task does) and talks to
//! cheap handles over channels. Two subscriptions that name the same server
//! channel share it: the subscribe frame goes out for the first, the
//! unsubscribe frame after the last. A subscription whose consumer falls
//! behind does not hold up the others: its events wait in a bounded
//! [`Backlog`] while the task goes on reading (and answering pings). A
//! subscription alone on its connection holds nobody up; for it the task
//! waits, and TCP pushes back.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::stream::FuturesUnordered;
use futures_util::{SinkExt, StreamExt};
use std::future::Future;
use std::pin::Pin;
use tokio::sync::mpsc::error::{SendError, TrySendError};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use crate::Error;
use crate::client::Inner;
use crate::event_stream::EventStream;
use crate::proto::{
    Action, Channel, Liveness, ReconnectPolicy, Reconnector, WsEnvelope, decode_ws_envelope,
    normalize_hashtag,
};
use crate::state::ConnectionState;
use crate::transport::backlog::Backlog;
use crate::transport::batch::Batch;
use crate::transport::task::{Closer, Signal, TaskHandle};
use crate::transport::ws::{self, Socket};

/// How long after a subscribe frame an error frame is taken to be about it.
const PENDING_WINDOW: Duration = Duration::from_secs(5);

/// What handles ask of the task.
#[derive(Debug)]
pub(crate) enum Command {
    Subscribe {
        id: u64,
        stream: Channel,
        tx: mpsc::Sender<Signal>,
        state: watch::Sender<ConnectionState>,
    },
    Unsubscribe {
        id: u64,
    },
}

/// What a multiplexer's handles share; the task ends when the last is gone.
#[derive(Debug)]
pub(crate) struct MuxShared {
    commands: mpsc::UnboundedSender<Command>,
    next_id: AtomicU64,
    receiving: Arc<AtomicBool>,
    state: watch::Receiver<ConnectionState>,
}

/// A multiplexed WebSocket connection; see [`Client::multiplex`](crate::Client::multiplex).
///
/// ```no_run
/// # async fn run(client: mastostream::Client) {
/// use futures_util::StreamExt;
/// use mastostream::proto::Channel;
///
/// let multiplex = client.multiplex();
/// let mut rust = multiplex.subscribe(Channel::Hashtag("rust".into()));
/// let local = multiplex.subscribe(Channel::PublicLocal);
/// drop(local); // unsubscribes; `rust` goes on, on the same connection
/// while let Some(event) = rust.next().await { /* ... */ }
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Multiplex {
    shared: Arc<MuxShared>,
}

impl Multiplex {
    pub(crate) fn start(inner: Arc<Inner>) -> Multiplex {
        let (commands, commands_rx) = mpsc::unbounded_channel();
        let (state_tx, state) = watch::channel(ConnectionState::Connecting);
        let receiving = Arc::new(AtomicBool::new(false));
        let outbox = Outbox::new(inner.ws_backlog);
        let task = MuxTask {
            inner,
            commands: commands_rx,
            subscribers: HashMap::new(),
            channels: HashMap::new(),
            pending: VecDeque::new(),
            state: state_tx,
            receiving: receiving.clone(),
            outbox,
        };
        tokio::spawn(task.run());
        Multiplex {
            shared: Arc::new(MuxShared {
                commands,
                next_id: AtomicU64::new(1),
                receiving,
                state,
            }),
        }
    }

    pub(crate) fn from_shared(shared: Arc<MuxShared>) -> Multiplex {
        Multiplex { shared }
    }

    pub(crate) fn downgrade(&self) -> Weak<MuxShared> {
        Arc::downgrade(&self.shared)
    }

    /// Subscribes to a stream; its events arrive on the returned stream.
    /// Dropping (or closing) it unsubscribes.
    pub fn subscribe(&self, stream: Channel) -> EventStream {
        EventStream::new(self.subscribe_handle(stream))
    }

    pub(crate) fn subscribe_handle(&self, stream: Channel) -> TaskHandle {
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, signals) = mpsc::channel(crate::transport::task::SIGNAL_QUEUE);
        let (state_tx, state) = watch::channel(self.shared.state.borrow().clone());
        let command = Command::Subscribe {
            id,
            stream: stream.clone(),
            tx: tx.clone(),
            state: state_tx,
        };
        if self.shared.commands.send(command).is_err() {
            // The connection task has ended for good: so does this stream.
            let _ = tx.try_send(Signal::Ended(Error::Closed));
        }
        TaskHandle {
            stream,
            signals,
            state,
            receiving: self.shared.receiving.clone(),
            closer: Closer::Subscription(self.shared.commands.clone(), id),
            task: None,
            _keep_alive: Some(self.shared.clone()),
        }
    }

    /// The connection's state.
    pub fn state(&self) -> ConnectionState {
        self.shared.state.borrow().clone()
    }

    /// Whether the connection task has ended (after a fatal error).
    pub fn is_closed(&self) -> bool {
        self.shared.commands.is_closed()
    }
}

/// The server-side channel a stream maps to: Mastodon treats `tag=Rust` and
/// `tag=rust` as one subscription.
fn channel_key(stream: &Channel) -> String {
    match stream {
        Channel::Hashtag(tag) | Channel::HashtagLocal(tag) => {
            format!("{}\0{}", stream.name(), normalize_hashtag(tag))
        }
        other => match other.arg() {
            Some(arg) => format!("{}\0{arg}", other.name()),
            None => other.name().to_owned(),
        },
    }
}

struct Subscriber {
    key: String,
    tx: mpsc::Sender<Signal>,
    state: watch::Sender<ConnectionState>,
}

struct Membership {
    /// The stream as first subscribed: what the subscribe frame names.
    stream: Channel,
    members: usize,
}

/// A subscription that has room in its queue again, with the room reserved.
type Room = (u64, Result<mpsc::OwnedPermit<Signal>, SendError<()>>);

/// Hands signals to subscriptions without waiting for a slow one.
struct Outbox {
    backlog: Backlog<mpsc::Sender<Signal>, Signal>,
    /// One wait for room per subscription that is behind.
    /// (Sync, as the task's `&self` methods are held across awaits.)
    waiting: FuturesUnordered<Pin<Box<dyn Future<Output = Room> + Send + Sync>>>,
}

impl Outbox {
    /// An outbox that holds up to `limit` bytes for subscriptions that are behind.
    fn new(limit: usize) -> Self {
        Outbox {
            backlog: Backlog::new(limit),
            waiting: FuturesUnordered::new(),
        }
    }

    /// Sends `signal` (of `bytes` bytes) to subscription `id` if its queue
    /// has room and nothing waits before it; else queues it in the backlog.
    /// But when it is `alone` on the connection, so that no other
    /// subscription waits on it, a full queue is waited for instead: the
    /// socket goes unread and TCP pushes back, with nothing held here (as
    /// on an SSE stream).
    async fn deliver(
        &mut self,
        id: u64,
        tx: &mpsc::Sender<Signal>,
        signal: Signal,
        bytes: usize,
        alone: bool,
    ) {
        if self.backlog.is_behind(id) {
            self.backlog.push(id, tx, signal, bytes);
            return;
        }
        if alone {
            let _ = tx.send(signal).await;
            return;
        }
        match tx.try_send(signal) {
            Ok(()) | Err(TrySendError::Closed(_)) => {}
            Err(TrySendError::Full(signal)) => {
                self.backlog.push(id, tx, signal, bytes);
                self.wait_for_room(id, tx.clone());
            }
        }
    }

    fn wait_for_room(&mut self, id: u64, tx: mpsc::Sender<Signal>) {
        self.waiting
            .push(Box::pin(async move { (id, tx.reserve_owned().await) }));
    }

    /// Fills the room a subscription got with its oldest waiting signal.
    fn fill(&mut self, (id, room): Room) {
        match room {
            Ok(permit) => {
                if let Some(signal) = self.backlog.pop(id) {
                    let tx = permit.send(signal);
                    if self.backlog.is_behind(id) {
                        self.wait_for_room(id, tx);
                    }
                }
            }
            // The consumer is gone.
            Err(_) => self.backlog.remove(id),
        }
    }

    /// The connection is gone: sends everything still waiting, in order,
    /// waiting as long as each consumer takes (there is nothing else to serve).
    async fn flush(&mut self) {
        self.waiting.clear();
        for (tx, signal) in self.backlog.drain() {
            let _ = tx.send(signal).await;
        }
    }
}

struct MuxTask {
    inner: Arc<Inner>,
    commands: mpsc::UnboundedReceiver<Command>,
    subscribers: HashMap<u64, Subscriber>,
    channels: HashMap<String, Membership>,
    /// Subscribe frames sent and not yet confirmed by an event.
    pending: VecDeque<(String, Instant)>,
    state: watch::Sender<ConnectionState>,
    receiving: Arc<AtomicBool>,
    outbox: Outbox,
}

/// Why a connection ended.
enum End {
    /// Every handle is gone.
    Done,
    /// It broke.
    Failed(Error),
}

impl MuxTask {
    async fn run(mut self) {
        let settings = self.inner.settings.clone();
        let mut reconnector =
            Reconnector::new(settings.reconnect.clone()).stable_after(settings.stable_after);
        loop {
            self.set_state(ConnectionState::Connecting).await;
            let error = match self.connect_and_serve(&mut reconnector).await {
                End::Done => return,
                End::Failed(error) => error,
            };
            // What the connection read goes before the news that it broke.
            self.outbox.flush().await;
            self.receiving.store(false, Ordering::Relaxed);
            match reconnector.on_disconnect(Instant::now().into_std(), &error) {
                Action::GiveUp => {
                    self.end_all(error).await;
                    return;
                }
                Action::Reconnect { delay, attempt } => {
                    tracing::debug!(%error, attempt, ?delay, "WebSocket broke; reconnecting");
                    self.broadcast(|| Signal::Abort(error.clone())).await;
                    self.set_state(ConnectionState::Reconnecting {
                        attempt,
                        delay,
                        reason: error,
                    })
                    .await;
                    let wake = Instant::now() + delay;
                    loop {
                        tokio::select! {
                            _ = tokio::time::sleep_until(wake) => break,
                            command = self.commands.recv() => match command {
                                None => return,
                                Some(command) => self.apply(command, None).await,
                            },
                        }
                    }
                }
            }
        }
    }

    /// Tells every subscriber the connection's new state.
    async fn set_state(&mut self, state: ConnectionState) {
        self.state.send_replace(state.clone());
        for subscriber in self.subscribers.values() {
            subscriber.state.send_replace(state.clone());
        }
        self.broadcast(|| Signal::State(state.clone())).await;
    }

    async fn broadcast(&self, signal: impl Fn() -> Signal) {
        for subscriber in self.subscribers.values() {
            let _ = subscriber.tx.send(signal()).await;
        }
    }

    /// The connection gave up: every subscription ends with `error`.
    async fn end_all(&mut self, error: Error) {
        self.state
            .send_replace(ConnectionState::Closed(Some(error.clone())));
        for (_, subscriber) in self.subscribers.drain() {
            subscriber
                .state
                .send_replace(ConnectionState::Closed(Some(error.clone())));
            let _ = subscriber.tx.send(Signal::Ended(error.clone())).await;
        }
        self.channels.clear();
    }

    /// Applies a command; with a socket, sends the (un)subscribe frame it needs.
    async fn apply(&mut self, command: Command, socket: Option<&mut Socket>) {
        match command {
            Command::Subscribe {
                id,
                stream,
                tx,
                state,
            } => {
                let key = channel_key(&stream);
                state.send_replace(self.state.borrow().clone());
                self.subscribers.insert(
                    id,
                    Subscriber {
                        key: key.clone(),
                        tx,
                        state,
                    },
                );
                let channel = self
                    .channels
                    .entry(key.clone())
                    .or_insert(Membership { stream, members: 0 });
                channel.members += 1;
                if channel.members == 1
                    && let Some(socket) = socket
                {
                    let frame = channel.stream.ws_command(true);
                    self.pending.push_back((key, Instant::now()));
                    if let Err(error) = socket.send(Message::text(frame)).await {
                        tracing::debug!(%error, "subscribe frame not sent; the reconnect re-sends it");
                    }
                }
            }
            Command::Unsubscribe { id } => {
                let Some(subscriber) = self.subscribers.remove(&id) else {
                    return;
                };
                subscriber.state.send_replace(ConnectionState::Closed(None));
                let Some(channel) = self.channels.get_mut(&subscriber.key) else {
                    return;
                };
                channel.members -= 1;
                if channel.members == 0 {
                    let frame = channel.stream.ws_command(false);
                    self.channels.remove(&subscriber.key);
                    if let Some(socket) = socket {
                        let _ = socket.send(Message::text(frame)).await;
                    }
                }
            }
        }
    }

    async fn connect_and_serve(&mut self, reconnector: &mut Reconnector) -> End {
        let inner = self.inner.clone();
        let connect = async move {
            let base = inner.streaming_base().await?;
            ws::connect(&inner, &base).await
        };
        tokio::pin!(connect);
        let mut socket = loop {
            tokio::select! {
                result = &mut connect => match result {
                    Ok(socket) => break socket,
                    Err(error) => return End::Failed(error),
                },
                command = self.commands.recv() => match command {
                    None => return End::Done,
                    Some(command) => self.apply(command, None).await,
                },
            }
        };
        reconnector.on_connected(Instant::now().into_std());
        // Re-subscribe every live subscription on every new connection.
        self.pending.clear();
        for (key, channel) in &self.channels {
            self.pending.push_back((key.clone(), Instant::now()));
            if let Err(error) = socket
                .send(Message::text(channel.stream.ws_command(true)))
                .await
            {
                return End::Failed(Error::network(error));
            }
        }
        self.set_state(ConnectionState::Open).await;
        let mut liveness = Liveness::new(Instant::now().into_std(), self.inner.ws_timeout, None);
        let reconnect_off = self.inner.settings.reconnect == ReconnectPolicy::Off;
        loop {
            let deadline = liveness.poll_timeout().map(Instant::from_std);
            // Past the backlog's bound, stop reading: TCP pushes back.
            let reading = !self.outbox.backlog.is_full();
            tokio::select! {
                biased;
                command = self.commands.recv() => match command {
                    None => {
                        let _ = socket.close(None).await;
                        return End::Done;
                    }
                    Some(command) => self.apply(command, Some(&mut socket)).await,
                },
                Some(room) = self.outbox.waiting.next(), if !self.outbox.waiting.is_empty() => {
                    self.outbox.fill(room);
                    if !reading {
                        // Not reading was our doing, not the server's silence.
                        liveness.handle_bytes(Instant::now().into_std());
                    }
                }
                message = socket.next(), if reading => {
                    liveness.handle_bytes(Instant::now().into_std());
                    match message {
                        Some(Ok(Message::Text(text))) => {
                            self.receiving.store(true, Ordering::Relaxed);
                            if let Err(error) = self.route(text.as_str(), reconnect_off).await {
                                return End::Failed(error);
                            }
                            // Waiting on a lone slow subscriber is not the server's silence.
                            liveness.handle_bytes(Instant::now().into_std());
                        }
                        Some(Ok(Message::Ping(_))) => {
                            self.receiving.store(true, Ordering::Relaxed);
                            // tungstenite queued the pong; make sure it leaves now.
                            if let Err(error) = socket.flush().await {
                                return End::Failed(Error::network(error));
                            }
                        }
                        Some(Ok(Message::Close(frame))) => {
                            let code = frame.map(|f| u16::from(f.code));
                            return End::Failed(Error::Network {
                                message: format!("the server closed the WebSocket (code {})", code.map_or("none".into(), |c| c.to_string())),
                                source: None,
                            });
                        }
                        Some(Ok(_)) => {}
                        Some(Err(error)) => return End::Failed(Error::network(error)),
                        None => {
                            return End::Failed(Error::Network {
                                message: "the WebSocket closed".into(),
                                source: None,
                            });
                        }
                    }
                }
                _ = super::sleep_until_or_never(deadline), if reading => {
                    if let Some(crate::proto::LivenessEvent::Stalled { silent_for }) =
                        liveness.handle_timeout(Instant::now().into_std())
                    {
                        return End::Failed(Error::Stalled { silent_for });
                    }
                }
            }
        }
    }

    /// Hands a frame to the subscriptions it belongs to. An error here ends
    /// the connection (only a malformed frame with reconnect off does).
    async fn route(&mut self, text: &str, reconnect_off: bool) -> Result<(), Error> {
        let alone = self.subscribers.len() == 1;
        match decode_ws_envelope(text) {
            Ok(WsEnvelope::Event { stream, name, data }) => {
                let Ok(stream) = Channel::from_ws_stream_array(&stream) else {
                    tracing::debug!(?stream, "event for a stream this client does not know");
                    return Ok(());
                };
                let key = channel_key(&stream);
                self.pending.retain(|(k, _)| *k != key);
                let bytes = name.len() + data.as_ref().map_or(0, String::len);
                for (id, subscriber) in self.subscribers.iter().filter(|(_, s)| s.key == key) {
                    let batch = Batch::one(name.clone(), data.clone(), reconnect_off);
                    self.outbox
                        .deliver(*id, &subscriber.tx, Signal::Batch(batch), bytes, alone)
                        .await;
                }
            }
            Ok(WsEnvelope::Error { error, status }) => self.route_error(error, status).await,
            Ok(_) => {}
            Err(error) if reconnect_off => return Err(error),
            Err(error) => {
                tracing::debug!(%error, "skipped a malformed frame");
                for (id, subscriber) in &self.subscribers {
                    let signal = Signal::Malformed(error.clone());
                    self.outbox
                        .deliver(*id, &subscriber.tx, signal, text.len(), alone)
                        .await;
                }
            }
        }
        Ok(())
    }

    /// An error frame names no stream, and Mastodon acknowledges no
    /// successful subscribe. It answers a refused one at once, though, so the
    /// error is taken to be about the newest subscribe sent in the last few
    /// seconds that no event has confirmed yet; with none, it is logged,
    /// never sent to every subscription. (Two subscribes sent together stay
    /// ambiguous; the newer one is blamed.)
    async fn route_error(&mut self, message: String, status: Option<u16>) {
        let now = Instant::now();
        self.pending
            .retain(|(_, sent)| now.duration_since(*sent) < PENDING_WINDOW);
        let (Some(status), Some((key, _))) = (status, self.pending.back().cloned()) else {
            tracing::warn!(error = %message, ?status, "error frame for no pending subscription");
            return;
        };
        self.pending.pop_back();
        let error = Error::Http {
            status,
            message: Some(message),
            retry_after: None,
        };
        let refused: Vec<u64> = self
            .subscribers
            .iter()
            .filter(|(_, s)| s.key == key)
            .map(|(id, _)| *id)
            .collect();
        for id in refused {
            if let Some(subscriber) = self.subscribers.remove(&id) {
                subscriber
                    .state
                    .send_replace(ConnectionState::Closed(Some(error.clone())));
                let signal = Signal::Ended(error.clone());
                let alone = self.subscribers.is_empty();
                self.outbox
                    .deliver(id, &subscriber.tx, signal, 0, alone)
                    .await;
            }
        }
        self.channels.remove(&key);
    }
}
