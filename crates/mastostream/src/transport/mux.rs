//! The multiplexed WebSocket: one connection, many subscriptions, added and
//! removed at run time, all re-sent (in the order they were made) after
//! every reconnect.
//!
//! One task owns the socket (as async-nats' connection task does) and talks
//! to cheap handles over channels. Two subscriptions that name the same
//! server channel share it: the subscribe frame goes out for the first, the
//! unsubscribe frame after the last. The task never waits on a consumer:
//! each subscription has its own [`queue`](super::queue), and past its bound
//! a consumer that is behind loses events, told so by an
//! [`Item::Lagged`](crate::Item::Lagged), while the others, the pings and
//! the reconnects go on. A subscription alone on its connection holds
//! nobody up; for it the task stops reading instead, and TCP pushes back,
//! for at most [`hold_limit`], so that the server's pings are answered.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::{Future, poll_fn};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::task::Poll;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use crate::Error;
use crate::item::Item;
use crate::state::ConnectionState;
use crate::transport::batch::Batch;
use crate::transport::context::Context;
use crate::transport::handle::{Closer, TaskHandle};
use crate::transport::queue::{Overflow, Pushed, Signal, SignalTx, queue};
use crate::transport::race::{self, First};
use crate::transport::refusal::{Pending, attribute, attribute_close};
use crate::transport::task::jitter_seed;
use crate::transport::ws::{self, Socket};
use mastostream_proto::{
    Action, Channel, Label, Liveness, LivenessEvent, ReconnectPolicy, Reconnector, WsEnvelope,
    decode_ws_envelope, normalize_hashtag, read_label,
};

/// How long after a subscribe frame an error frame may still be about it.
/// Mastodon answers a refused list only after a database lookup, whose pool
/// waits up to 15 s for a connection.
const PENDING_WINDOW: Duration = Duration::from_secs(20);

/// What handles ask of the task.
#[derive(Debug)]
pub(crate) enum Command {
    Subscribe {
        id: u64,
        channel: Channel,
        tx: SignalTx,
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
    queue_limit: usize,
    malformed_ends: bool,
    on_demand: bool,
}

/// A handle on one multiplexed WebSocket. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct MuxHandle {
    shared: Arc<MuxShared>,
}

impl MuxHandle {
    /// Starts a multiplexer's task on the current runtime; it connects at once.
    pub fn start(context: Arc<Context>) -> MuxHandle {
        Self::start_with(context, None)
    }

    /// Starts a connection of `channel`'s own, named in the URL
    /// (`?stream=list&list=42`) rather than by a subscribe frame. Servers
    /// that serve no SSE get one per stream this way (see
    /// [`subscribe_own`](Self::subscribe_own)).
    pub fn start_with(context: Arc<Context>, initial: Option<Channel>) -> MuxHandle {
        let (commands, commands_rx) = mpsc::unbounded_channel();
        let (state_tx, state) = watch::channel(ConnectionState::Connecting);
        let receiving = Arc::new(AtomicBool::new(false));
        let queue_limit = context.queue_limit;
        let malformed_ends = context.settings.reconnect == ReconnectPolicy::Off;
        let on_demand = context.settings.parse_on_demand;
        let task = MuxTask {
            context,
            commands: commands_rx,
            subscribers: BTreeMap::new(),
            channels: HashMap::new(),
            pending: VecDeque::new(),
            state: state_tx,
            receiving: receiving.clone(),
            held: None,
            lone_drops: false,
            initial: initial.as_ref().map(channel_key),
            initial_channel: initial,
            delegated: HashMap::new(),
            departed: VecDeque::new(),
            write_failed: None,
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn(task.run())),
            // No runtime to run on: the task is dropped, and every
            // subscription ends at once with an error that says why.
            Err(_) => drop(task),
        }
        MuxHandle {
            shared: Arc::new(MuxShared {
                commands,
                next_id: AtomicU64::new(1),
                receiving,
                state,
                queue_limit,
                malformed_ends,
                on_demand,
            }),
        }
    }

    /// Subscribes to `channel`; dropping (or closing) the handle unsubscribes.
    pub fn subscribe_handle(&self, channel: Channel, heartbeats: bool) -> TaskHandle {
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, signals) = queue(self.shared.queue_limit);
        let (state_tx, state) = watch::channel(self.shared.state.borrow().clone());
        let command = Command::Subscribe {
            id,
            channel: channel.clone(),
            tx: tx.clone(),
            state: state_tx,
        };
        if self.shared.commands.send(command).is_err() {
            // The connection task has ended for good (or never ran): so does this stream.
            tx.push(Signal::Ended(Error::Config(
                "this multiplexed WebSocket is not running: it ended, or was made outside a tokio runtime".into(),
            )));
        }
        drop(tx);
        let mut handle = TaskHandle::new(
            channel,
            signals,
            state,
            self.shared.receiving.clone(),
            Closer::Subscription(self.shared.commands.clone(), id),
            self.shared.malformed_ends,
        );
        handle.heartbeats = heartbeats;
        handle.on_demand = self.shared.on_demand;
        handle.keep_alive = Some(self.shared.clone());
        handle
    }

    /// A WebSocket of `channel`'s own, the stream named in its URL.
    ///
    /// Servers that serve no SSE (GoToSocial, Pleroma, Akkoma, Iceshrimp.NET)
    /// are reached this way when the transport is `Auto`: one connection
    /// per stream, as SSE would be. Not all of them can multiplex:
    /// GoToSocial labels every event with the connection's first stream and
    /// ignores in-band subscribes to `user:notification` and hashtags, and
    /// Akkoma's in-band subscribe takes no tag or list
    /// (superseriousbusiness/gotosocial, internal/api/client/streaming/stream.go;
    /// AkkomaGang/akkoma, lib/pleroma/web/mastodon_api/websocket_handler.ex),
    /// while all of them take the stream from the URL.
    pub fn subscribe_own(context: Arc<Context>, channel: Channel, heartbeats: bool) -> TaskHandle {
        MuxHandle::start_with(context, Some(channel.clone())).subscribe_handle(channel, heartbeats)
    }

    /// The connection's state.
    pub fn state(&self) -> ConnectionState {
        self.shared.state.borrow().clone()
    }

    /// A receiver that changes with the connection's state.
    pub fn watch_state(&self) -> watch::Receiver<ConnectionState> {
        self.shared.state.clone()
    }

    /// Whether the connection task has ended (after a fatal error).
    pub fn is_closed(&self) -> bool {
        self.shared.commands.is_closed()
    }
}

/// The context's shared multiplexed WebSocket, made on first use (on the
/// current runtime) and closed when its last subscription ends.
pub(crate) fn shared(context: &Arc<Context>) -> MuxHandle {
    let mut slot = context.shared_mux.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(shared) = slot.upgrade() {
        let handle = MuxHandle { shared };
        if !handle.is_closed() {
            return handle;
        }
    }
    let handle = MuxHandle::start(context.clone());
    *slot = Arc::downgrade(&handle.shared);
    handle
}

/// Iceshrimp.NET sends a delete on a list stream as a `status.update` whose
/// payload is the deleted note's id, not a status (iceshrimp/Iceshrimp.NET,
/// a mirror: Iceshrimp.Backend/Controllers/Mastodon/Streaming/Channels/ListChannel.cs,
/// `OnNoteDeleted`): read as what it is, a `delete`, rather than skipped as
/// a malformed update.
fn iceshrimp_list_delete(stream: &[String], name: String, data: Option<&str>) -> String {
    let on_a_list = stream.first().is_some_and(|s| s == "list");
    let an_id = data.is_some_and(|d| {
        !d.is_empty() && d.len() <= 64 && d.bytes().all(|b| b.is_ascii_alphanumeric())
    });
    if name == "status.update" && on_a_list && an_id {
        "delete".to_owned()
    } else {
        name
    }
}

/// The event name of Pleroma's answers to subscribe and unsubscribe.
const PLEROMA_RESPOND: &str = "pleroma:respond";

/// The stream of Mastodon's that an [`Channel::Other`] names, when it is
/// one and carries only the parameter that stream takes.
fn known_channel(name: &str, params: &[(String, String)]) -> Option<Channel> {
    let arg = match params {
        [] => None,
        [(key, value)] if key == "tag" || key == "list" => Some(value.as_str()),
        _ => return None,
    };
    Channel::from_name(name, arg).ok()
}

/// Where a context keeps its shared multiplexer.
pub(crate) type SharedSlot = std::sync::Mutex<Weak<MuxShared>>;

/// The server-side channel a stream maps to: Mastodon treats `tag=Rust` and
/// `tag=rust` as one subscription.
fn channel_key(channel: &Channel) -> String {
    if let Channel::Other { name, params } = channel
        && let Some(known) = known_channel(name, params)
    {
        // `Channel::other("hashtag", [("tag", "Rust")])` is the hashtag
        // stream, and its events are labelled as such.
        return channel_key(&known);
    }
    match channel {
        Channel::Hashtag(tag) | Channel::HashtagLocal(tag) => {
            format!("{}\0{}", channel.name(), normalize_hashtag(tag))
        }
        other => {
            let mut key = other.name().to_owned();
            for part in other.ws_stream_array().iter().skip(1) {
                key.push('\0');
                key.push_str(part);
            }
            key
        }
    }
}

struct Subscriber {
    key: String,
    tx: SignalTx,
    state: watch::Sender<ConnectionState>,
}

struct Membership {
    /// The stream as first subscribed: what the subscribe frame names.
    channel: Channel,
    members: usize,
    /// The first member's id: channels are (re)subscribed in this order.
    order: u64,
}

struct MuxTask {
    context: Arc<Context>,
    commands: mpsc::UnboundedReceiver<Command>,
    /// By id, which is the order they were made in.
    subscribers: BTreeMap<u64, Subscriber>,
    channels: HashMap<String, Membership>,
    /// Subscribe frames sent and not yet confirmed by an event.
    pending: VecDeque<Pending>,
    state: watch::Sender<ConnectionState>,
    receiving: Arc<AtomicBool>,
    /// A subscription alone on the connection whose queue is full, and
    /// since when: the socket is not read until it has room, for at most
    /// [`hold_limit`].
    held: Option<(u64, Instant)>,
    /// The key of the stream named in the connection's URL, if any: it is
    /// never subscribed to with a frame.
    initial: Option<String>,
    initial_channel: Option<Channel>,
    /// A subscription alone on the connection that was held past the limit
    /// loses (and is told of) what does not fit, like one that shares its
    /// connection, until its queue has room again.
    lone_drops: bool,
    /// Subscriptions handed to a WebSocket of their own (a stream that
    /// cannot share this one: see `Software::shares_websocket`), by id:
    /// where their unsubscribe goes.
    delegated: HashMap<u64, mpsc::UnboundedSender<Command>>,
    /// The keys of the last streams whose last subscription left: their
    /// events still on the way are theirs, not the one stream left's (see
    /// `members_for`).
    departed: VecDeque<String>,
    /// A write in `apply` failed: the connection is to be remade.
    write_failed: Option<Error>,
}

/// How many departed streams a connection remembers.
const DEPARTED_KEPT: usize = 32;

/// How long one write to the WebSocket may take. A server that stops
/// reading (its TCP window closed, say while flooding pings whose pongs
/// pile up) would otherwise hold the one task that reads for every
/// subscription, and with it the stall detection, for ever.
pub(crate) const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// `write`, given [`WRITE_TIMEOUT`] to complete.
async fn written(
    write: impl Future<Output = Result<(), tokio_tungstenite::tungstenite::Error>>,
) -> Result<(), Error> {
    match tokio::time::timeout(WRITE_TIMEOUT, write).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(Error::network(error)),
        Err(_) => Err(Error::Network {
            message: format!(
                "the server took nothing we wrote for {} s",
                WRITE_TIMEOUT.as_secs()
            ),
            source: None,
        }),
    }
}

/// How long a consumer alone on its WebSocket may keep the connection from
/// being read (TCP then pushes back on the server, and nothing is lost):
/// a quarter of the stall timeout, at most 10 s. Past it the connection is
/// read again, so that the server's pings are answered (Mastodon drops a
/// client that has not answered its previous ping when it sends the next,
/// 30 s apart: mastodon/mastodon, streaming/index.js), and what does not
/// fit is dropped and counted (`Item::Lagged`).
fn hold_limit(stall_timeout: Option<Duration>) -> Duration {
    const MAX_HOLD: Duration = Duration::from_secs(10);
    stall_timeout.map_or(MAX_HOLD, |t| (t / 4).min(MAX_HOLD))
}

/// Where a subscription goes (see `MuxTask::placement`).
enum Placement {
    Here,
    OwnConnection,
    Refused(Error),
}

/// Why a connection ended.
enum End {
    /// Every handle is gone.
    Done,
    /// It broke.
    Failed(Error),
}

/// What woke a serving connection up (see `connect_and_serve`).
enum Wake {
    /// A subscribe or unsubscribe; `None` when every handle is gone.
    Command(Option<Command>),
    /// The consumer held up has read its queue down.
    Room,
    /// The lone consumer that was losing events has caught up.
    DropsOver,
    /// The hold limit passed: read on, and drop for the lone consumer.
    HoldOver,
    /// What the socket read.
    Message(Option<Result<Message, tokio_tungstenite::tungstenite::Error>>),
    /// A liveness deadline: probe, or give up on a silent server.
    Silence,
}

impl MuxTask {
    async fn run(mut self) {
        let settings = self.context.settings.clone();
        let mut reconnector = Reconnector::new(settings.reconnect.clone(), jitter_seed())
            .stable_after(settings.stable_after);
        loop {
            self.set_state(ConnectionState::Connecting);
            let error = match self.connect_and_serve(&mut reconnector).await {
                End::Done => return,
                End::Failed(error) => error,
            };
            self.receiving.store(false, Ordering::Relaxed);
            self.held = None;
            self.lone_drops = false;
            match reconnector.on_disconnect(Instant::now().into_std(), &error) {
                Action::Reconnect { delay, attempt } => {
                    tracing::debug!(%error, attempt, ?delay, "WebSocket broke; reconnecting");
                    self.set_state(ConnectionState::Reconnecting {
                        attempt,
                        delay,
                        reason: error,
                    });
                    // `sleep` saturates a deadline past the clock's end.
                    let mut wait = pin!(tokio::time::sleep(delay));
                    loop {
                        match race::first(wait.as_mut(), self.commands.recv()).await {
                            First::A(()) => break,
                            First::B(None) => return,
                            First::B(Some(command)) => self.apply(command, None).await,
                        }
                    }
                }
                _ => {
                    self.end_all(error);
                    return;
                }
            }
        }
    }

    /// Tells every subscriber the connection's new state; never waits.
    fn set_state(&mut self, state: ConnectionState) {
        self.state.send_replace(state.clone());
        let item = state.as_item();
        for subscriber in self.subscribers.values() {
            subscriber.state.send_replace(state.clone());
            if let Some(item) = &item {
                subscriber.tx.push(Signal::Item(item.clone()));
            }
        }
    }

    /// The connection gave up: every subscription ends with `error`.
    fn end_all(&mut self, error: Error) {
        self.state
            .send_replace(ConnectionState::Closed(Some(error.clone())));
        for (_, subscriber) in std::mem::take(&mut self.subscribers) {
            subscriber
                .state
                .send_replace(ConnectionState::Closed(Some(error.clone())));
            subscriber.tx.push(Signal::Ended(error.clone()));
        }
        self.channels.clear();
    }

    /// Applies a command; with a socket, sends the (un)subscribe frame it needs.
    async fn apply(&mut self, command: Command, socket: Option<&mut Socket>) {
        match command {
            Command::Subscribe {
                id,
                channel,
                tx,
                state,
            } => {
                // A stream the server is known to lack ends at once, with
                // a reason, instead of waiting on a silence; one that
                // cannot share this connection gets one of its own. Before
                // discovery has said what the server is, both wait for
                // the connection (see `sort_out`).
                match self.placement(&channel, u64::MAX) {
                    Placement::Here => {}
                    Placement::Refused(error) => {
                        state.send_replace(ConnectionState::Closed(Some(error.clone())));
                        tx.push(Signal::Ended(error));
                        return;
                    }
                    Placement::OwnConnection => {
                        self.delegate(id, channel, tx, state);
                        return;
                    }
                }
                let key = channel_key(&channel);
                // A stream that joins a connection already on its way or
                // open is told so, as the ones there were: a catch-up
                // stage fetches its starting points on `Connected`.
                let now = self.state.borrow().clone();
                if matches!(now, ConnectionState::Connecting | ConnectionState::Open)
                    && let Some(item) = now.as_item()
                {
                    tx.push(Signal::Item(item));
                }
                state.send_replace(now);
                self.subscribers.insert(
                    id,
                    Subscriber {
                        key: key.clone(),
                        tx,
                        state,
                    },
                );
                // No longer alone: nobody may be held up for a consumer now.
                self.held = None;
                let membership = self.channels.entry(key.clone()).or_insert(Membership {
                    channel,
                    members: 0,
                    order: id,
                });
                membership.members += 1;
                self.departed.retain(|k| *k != key);
                if membership.members == 1
                    && self.initial.as_ref() != Some(&key)
                    && let Some(socket) = socket
                {
                    let frame = membership.channel.ws_command(true);
                    self.pending.push_back(Pending::new(
                        key,
                        membership.channel.clone(),
                        Instant::now(),
                    ));
                    if let Err(error) = written(socket.send(Message::text(frame))).await {
                        tracing::debug!(%error, "subscribe frame not sent; the reconnect re-sends it");
                        self.write_failed = Some(error);
                    }
                }
            }
            Command::Unsubscribe { id } => {
                if let Some(own) = self.delegated.remove(&id) {
                    let _ = own.send(Command::Unsubscribe { id });
                    return;
                }
                let Some(subscriber) = self.subscribers.remove(&id) else {
                    return;
                };
                if self.held.is_some_and(|(held, _)| held == id) {
                    self.held = None;
                }
                subscriber.state.send_replace(ConnectionState::Closed(None));
                let Some(membership) = self.channels.get_mut(&subscriber.key) else {
                    return;
                };
                membership.members -= 1;
                if membership.members == 0 {
                    let frame = membership.channel.ws_command(false);
                    self.channels.remove(&subscriber.key);
                    if self.departed.len() == DEPARTED_KEPT {
                        self.departed.pop_front();
                    }
                    self.departed.push_back(subscriber.key.clone());
                    self.pending.retain(|p| p.key != subscriber.key);
                    if let Some(socket) = socket
                        && let Err(error) = written(socket.send(Message::text(frame))).await
                    {
                        self.write_failed = Some(error);
                    }
                }
            }
        }
    }

    async fn connect_and_serve(&mut self, reconnector: &mut Reconnector) -> End {
        let context = self.context.clone();
        let initial_channel = self.initial_channel.clone();
        let connect = async move {
            let base = context.streaming_base().await?;
            ws::connect(&context, &base, initial_channel.as_ref()).await
        };
        let mut connect = pin!(connect);
        let mut socket = loop {
            match race::first(connect.as_mut(), self.commands.recv()).await {
                First::A(Ok(socket)) => break socket,
                First::A(Err(error)) => return End::Failed(error),
                First::B(None) => return End::Done,
                First::B(Some(command)) => self.apply(command, None).await,
            }
        };
        reconnector.on_connected(Instant::now().into_std());
        // A new connection carries nothing sent for streams left before it.
        self.departed.clear();
        self.sort_out();
        // Re-subscribe every live subscription, in the order they were made.
        self.pending.clear();
        let mut channels: Vec<(&String, &Membership)> = self.channels.iter().collect();
        channels.sort_by_key(|(_, m)| m.order);
        let now = Instant::now();
        for (key, membership) in channels {
            if self.initial.as_ref() == Some(key) {
                // Named in the URL.
                continue;
            }
            self.pending
                .push_back(Pending::new(key.clone(), membership.channel.clone(), now));
            let frame = membership.channel.ws_command(true);
            if let Err(error) = written(socket.send(Message::text(frame))).await {
                return End::Failed(error);
            }
        }
        self.set_state(ConnectionState::Open);
        // One liveness setting for both transports; here a quiet server is
        // probed with a ping, so a timeout shorter than its own pings works.
        let mut liveness = Liveness::new(
            Instant::now().into_std(),
            self.context.settings.stall_timeout,
            None,
        )
        .with_probe();
        loop {
            let deadline = liveness.poll_timeout().map(Instant::from_std);
            let held = self
                .held
                .and_then(|(id, since)| Some((self.subscribers.get(&id)?.tx.clone(), since)));
            let reading = held.is_none();
            // A lone consumer past the hold limit: back to holding once it
            // has read its queue down to half.
            let dropping = self
                .lone_drops
                .then(|| self.subscribers.values().next().map(|s| s.tx.clone()))
                .flatten();
            let hold_ends = held
                .as_ref()
                .map(|(_, since)| *since + hold_limit(self.context.settings.stall_timeout));
            // Biased: commands first, then the consumer's side, then the socket.
            let mut room = pin!(race::when(held.as_ref().map(|(tx, _)| tx.room())));
            let mut drops_over = pin!(race::when(dropping.as_ref().map(|tx| tx.room())));
            let mut hold_over = pin!(race::when(
                (!reading).then(|| super::sleep_until_or_never(hold_ends))
            ));
            let mut silence = pin!(race::when(
                reading.then(|| super::sleep_until_or_never(deadline))
            ));
            let commands = &mut self.commands;
            let socket_ref = &mut socket;
            let wake = poll_fn(|cx| {
                if let Poll::Ready(command) = commands.poll_recv(cx) {
                    return Poll::Ready(Wake::Command(command));
                }
                if room.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Wake::Room);
                }
                if drops_over.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Wake::DropsOver);
                }
                if hold_over.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Wake::HoldOver);
                }
                if reading && let Poll::Ready(message) = socket_ref.poll_next_unpin(cx) {
                    return Poll::Ready(Wake::Message(message));
                }
                if silence.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Wake::Silence);
                }
                Poll::Pending
            })
            .await;
            match wake {
                Wake::Command(None) => {
                    let _ = written(socket.close(None)).await;
                    return End::Done;
                }
                Wake::Command(Some(command)) => {
                    self.apply(command, Some(&mut socket)).await;
                    if let Some(error) = self.write_failed.take() {
                        return End::Failed(error);
                    }
                }
                Wake::Room => {
                    self.held = None;
                    // Not reading was our doing, not the server's silence.
                    liveness.handle_bytes(Instant::now().into_std());
                }
                Wake::DropsOver => {
                    self.lone_drops = false;
                }
                Wake::HoldOver => {
                    tracing::debug!(
                        "a consumer alone on its WebSocket is behind past the hold limit; its events are dropped and counted until it catches up"
                    );
                    self.held = None;
                    self.lone_drops = true;
                    liveness.handle_bytes(Instant::now().into_std());
                }
                Wake::Message(message) => {
                    liveness.handle_bytes(Instant::now().into_std());
                    match message {
                        Some(Ok(Message::Text(text))) => {
                            self.receiving.store(true, Ordering::Relaxed);
                            self.route(text.as_str());
                        }
                        Some(Ok(Message::Ping(_))) => {
                            self.receiving.store(true, Ordering::Relaxed);
                            self.heartbeat_all();
                            // tungstenite queued the pong; make sure it leaves now.
                            if let Err(error) = written(socket.flush()).await {
                                return End::Failed(error);
                            }
                        }
                        Some(Ok(Message::Pong(_))) => self.heartbeat_all(),
                        Some(Ok(Message::Close(frame))) => {
                            let code = frame.as_ref().map(|f| u16::from(f.code));
                            if let Some(frame) = &frame {
                                self.refuse_by_close(u16::from(frame.code), frame.reason.as_str());
                            }
                            return End::Failed(Error::Network {
                                message: format!(
                                    "the server closed the WebSocket (code {})",
                                    code.map_or("none".into(), |c| c.to_string())
                                ),
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
                Wake::Silence => match liveness.handle_timeout(Instant::now().into_std()) {
                    Some(LivenessEvent::Stalled { silent_for }) => {
                        return End::Failed(Error::Stalled { silent_for });
                    }
                    Some(LivenessEvent::Probe) => {
                        if let Err(error) =
                            written(socket.send(Message::Ping(Default::default()))).await
                        {
                            return End::Failed(error);
                        }
                    }
                    _ => {}
                },
            }
        }
    }

    /// A ping or pong shows the connection is alive: the WebSocket's
    /// heartbeat, handed to every subscription (shown only to those that
    /// asked for heartbeats; never waits, as every notice).
    fn heartbeat_all(&self) {
        for subscriber in self.subscribers.values() {
            subscriber.tx.push(Signal::Item(Item::Heartbeat));
        }
    }

    /// Hands a frame to the subscriptions it belongs to, without waiting.
    fn route(&mut self, text: &str) {
        let overflow = if self.subscribers.len() > 1 || self.lone_drops {
            Overflow::Drop
        } else {
            Overflow::Hold
        };
        match decode_ws_envelope(text) {
            Ok(WsEnvelope::Event { name, data, .. }) if name == PLEROMA_RESPOND => {
                self.respond(data.as_deref());
            }
            Ok(WsEnvelope::Event { stream, name, data }) => {
                let name = iceshrimp_list_delete(&stream, name, data.as_deref());
                let members = self.members_for(&stream);
                if members.is_empty() {
                    return;
                }
                let (mut name, mut data) = (Some(name), Some(data));
                for (i, id) in members.iter().enumerate() {
                    // The last member takes the event itself; the others a copy.
                    let batch = if i + 1 == members.len() {
                        Batch::one(name.take().unwrap_or_default(), data.take().flatten())
                    } else {
                        Batch::one(name.clone().unwrap_or_default(), data.clone().flatten())
                    };
                    let Some(subscriber) = self.subscribers.get(id) else {
                        continue;
                    };
                    match subscriber.tx.push_events(batch, overflow) {
                        Pushed::Full if overflow == Overflow::Hold => {
                            self.held = Some((*id, Instant::now()));
                        }
                        Pushed::Dropped => {
                            tracing::debug!(
                                subscription = id,
                                "a consumer is behind; an event was dropped for it"
                            );
                        }
                        _ => {}
                    }
                }
            }
            Ok(WsEnvelope::Error { error, status }) => self.route_error(error, status),
            Ok(_) => {}
            Err(error) => {
                tracing::debug!(%error, "skipped a malformed frame");
                for subscriber in self.subscribers.values() {
                    subscriber
                        .tx
                        .push(Signal::Item(Item::Skipped(error.clone())));
                }
            }
        }
    }

    /// The subscriptions an event labelled `stream` goes to (see
    /// [`read_label`] for the labels servers use). A label that is a stream
    /// goes to its subscribers (and shows the subscribe was taken); an
    /// unlabelled event (Pleroma's deletes) to every subscription; a label
    /// no subscription has goes nowhere, unless the connection carries a
    /// single subscription, whose it then must be, a server's own label
    /// (but not the label of a stream just unsubscribed from).
    fn members_for(&mut self, stream: &[String]) -> Vec<u64> {
        let label = read_label(stream);
        let key = match &label {
            Label::Unlabelled => return self.subscribers.keys().copied().collect(),
            Label::Stream(channel) => channel_key(channel),
            // Unknown, or a label kind of a later version: as sent.
            _ => stream.join("\0"),
        };
        self.pending.retain(|p| p.key != key);
        let members: Vec<u64> = self
            .subscribers
            .iter()
            .filter(|(_, s)| s.key == key)
            .map(|(id, _)| *id)
            .collect();
        if !members.is_empty() {
            return members;
        }
        if self.departed.contains(&key) {
            // Sent before the server read our unsubscribe.
            tracing::debug!(?stream, "event for a stream unsubscribed from");
            return Vec::new();
        }
        let mut keys = self.subscribers.values().map(|s| s.key.as_str());
        let one_stream = keys.next().is_some_and(|first| keys.all(|k| k == first));
        if one_stream && matches!(label, Label::Unknown(_)) {
            tracing::debug!(
                ?stream,
                "a label of the server's own, on a connection with one stream"
            );
            return self.subscribers.keys().copied().collect();
        }
        tracing::debug!(?stream, "event for a stream no subscription has");
        Vec::new()
    }

    /// Pleroma's answer to a subscribe or unsubscribe (kphrx/pleroma,
    /// lib/pleroma/web/mastodon_api/websocket_handler.ex): a payload with
    /// `"type"` and `"result":"success"|"ignored"|"error"`. Pleroma answers
    /// each command as it reads it, so the answer to a subscribe is about the
    /// oldest subscribe still pending: taken, it is no longer pending;
    /// refused, that subscription ends with the error.
    fn respond(&mut self, payload: Option<&str>) {
        let Some(answer) = payload.and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok())
        else {
            tracing::debug!(?payload, "an unreadable pleroma:respond");
            return;
        };
        let field = |name: &str| answer.get(name).and_then(|v| v.as_str());
        if field("type") != Some("subscribe") {
            return;
        }
        let Some(pending) = self.pending.pop_front() else {
            return;
        };
        if field("result") == Some("error") {
            let message = field("error").unwrap_or("refused").to_owned();
            let error = Error::Http {
                status: match message.as_str() {
                    "unauthorized" => 401,
                    other => crate::transport::refusal::status_for(other),
                },
                message: Some(message),
                retry_after: None,
            };
            self.refuse(pending, error);
        }
    }

    /// An error frame names no stream, and Mastodon acknowledges no
    /// successful subscribe; see [`attribute`] for how the subscription it
    /// is about is found. The one found is ended with the error; with none,
    /// the error is logged and every subscription goes on.
    fn route_error(&mut self, message: String, status: Option<u16>) {
        let Some(pending) = self.take_pending(|pending| attribute(pending, &message)) else {
            tracing::warn!(error = %message, ?status, "an error frame no pending subscription can be the cause of");
            return;
        };
        let error = Error::Http {
            status: status.unwrap_or_else(|| crate::transport::refusal::status_for(&message)),
            message: Some(message),
            retry_after: None,
        };
        self.refuse(pending, error);
    }

    /// A server that refuses a subscribe by closing the connection (see
    /// [`attribute_close`]): the one pending subscribe the close can be
    /// about ends with an error that says so, and the others reconnect
    /// without it, instead of re-sending it, being closed again, forever.
    fn refuse_by_close(&mut self, code: u16, reason: &str) {
        let Some(pending) = self.take_pending(|pending| attribute_close(pending, code)) else {
            return;
        };
        let message = if reason.is_empty() {
            format!("the server closed the WebSocket (code {code}) on this subscribe")
        } else {
            format!("the server closed the WebSocket (code {code}: {reason}) on this subscribe")
        };
        let error = Error::Http {
            status: if code == 1008 { 401 } else { 400 },
            message: Some(message),
            retry_after: None,
        };
        self.refuse(pending, error);
    }

    /// Forgets subscribes older than [`PENDING_WINDOW`], then takes the
    /// one `pick` names out of those still pending.
    fn take_pending(
        &mut self,
        pick: impl FnOnce(&VecDeque<Pending>) -> Option<usize>,
    ) -> Option<Pending> {
        let now = Instant::now();
        self.pending
            .retain(|p| now.duration_since(p.sent) < PENDING_WINDOW);
        let index = pick(&self.pending)?;
        self.pending.remove(index)
    }

    /// Whether `channel` must leave this connection for one of its own:
    /// the server, as discovery found it, cannot share one for it.
    /// Where a subscription to `channel` (made in `order`) goes: ended at
    /// once for a stream the server is known to lack, to a WebSocket of
    /// its own for one that cannot share this one, else here.
    fn placement(&self, channel: &Channel, order: u64) -> Placement {
        if let Err(error) = self.context.check_stream(channel) {
            return Placement::Refused(error);
        }
        if self.must_delegate(channel) || self.collides(channel, order) {
            return Placement::OwnConnection;
        }
        Placement::Here
    }

    fn must_delegate(&self, channel: &Channel) -> bool {
        self.initial.is_none()
            && self
                .context
                .software()
                .is_some_and(|software| !software.shares_websocket(channel))
    }

    /// Whether the server would take a subscribe to `channel` as one it
    /// already holds here for another stream (made before `before`), and
    /// ignore it (see `Software::same_subscription`).
    fn collides(&self, channel: &Channel, before: u64) -> bool {
        let Some(software) = self.context.software() else {
            return false;
        };
        let key = channel_key(channel);
        self.channels.iter().any(|(other, membership)| {
            *other != key
                && membership.order < before
                && software.same_subscription(&membership.channel, channel)
        })
    }

    /// Once connected (discovery has run): the subscriptions made before
    /// the server was known that it lacks end with the reason, and those
    /// that cannot share the connection move to one of their own.
    fn sort_out(&mut self) {
        let ids: Vec<u64> = self.subscribers.keys().copied().collect();
        for id in ids {
            let Some((channel, order)) = self
                .subscribers
                .get(&id)
                .and_then(|s| self.channels.get(&s.key))
                .map(|m| (m.channel.clone(), m.order))
            else {
                continue;
            };
            let placement = self.placement(&channel, order);
            if matches!(placement, Placement::Here) {
                continue;
            }
            let Some(subscriber) = self.subscribers.remove(&id) else {
                continue;
            };
            if let Some(membership) = self.channels.get_mut(&subscriber.key) {
                membership.members -= 1;
                if membership.members == 0 {
                    self.channels.remove(&subscriber.key);
                }
            }
            match placement {
                Placement::Refused(error) => {
                    subscriber
                        .state
                        .send_replace(ConnectionState::Closed(Some(error.clone())));
                    subscriber.tx.push(Signal::Ended(error));
                }
                _ => self.delegate(id, channel, subscriber.tx, subscriber.state),
            }
        }
    }

    /// Hands a subscription to a WebSocket of its own, its stream named in
    /// the URL. That connection lives until the subscription's consumer is
    /// gone (or its unsubscribe, forwarded, ends it), whatever becomes of
    /// this one.
    fn delegate(
        &mut self,
        id: u64,
        channel: Channel,
        tx: SignalTx,
        state: watch::Sender<ConnectionState>,
    ) {
        tracing::debug!(stream = %channel, "the stream gets a WebSocket of its own");
        let own = MuxHandle::start_with(self.context.clone(), Some(channel.clone()));
        let commands = own.shared.commands.clone();
        let consumer = tx.clone();
        let _ = commands.send(Command::Subscribe {
            id,
            channel,
            tx,
            state,
        });
        self.delegated.insert(id, commands);
        drop(tokio::spawn(async move {
            consumer.closed().await;
            drop(own);
        }));
    }

    /// Ends every subscription of the refused subscribe `pending` with `error`.
    fn refuse(&mut self, pending: Pending, error: Error) {
        tracing::debug!(%error, stream = %pending.channel, "subscription refused");
        let refused: Vec<u64> = self
            .subscribers
            .iter()
            .filter(|(_, s)| s.key == pending.key)
            .map(|(id, _)| *id)
            .collect();
        for id in refused {
            if let Some(subscriber) = self.subscribers.remove(&id) {
                subscriber
                    .state
                    .send_replace(ConnectionState::Closed(Some(error.clone())));
                subscriber.tx.push(Signal::Ended(error.clone()));
            }
        }
        self.channels.remove(&pending.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_known_stream_spelled_as_other_has_its_key() {
        let read = |stream: &[&str]| match read_label(stream) {
            Label::Stream(channel) => channel_key(&channel),
            other => panic!("{other:?}"),
        };
        for (other, label) in [
            (
                Channel::other("hashtag", [("tag", "Rust")]),
                &["hashtag", "rust"][..],
            ),
            (Channel::other("list", [("list", "42")]), &["list", "42"]),
            (
                Channel::other("public:local", [("", ""); 0]),
                &["public:local"],
            ),
        ] {
            assert_eq!(channel_key(&other), read(label), "{other:?}");
        }
        // Another parameter, or a name this version does not know: as given.
        let extra = Channel::other("hashtag", [("tag", "rust"), ("any", "x")]);
        assert_eq!(channel_key(&extra), "hashtag\0rust\0x");
        let own = Channel::other("public:allow_local_only", [("", ""); 0]);
        assert_eq!(channel_key(&own), "public:allow_local_only");
    }
}
