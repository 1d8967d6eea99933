//! Gap-free streaming: after an outage, fetch what was missed over REST.
//!
//! Mastodon's streams carry no event ids, so a reconnect silently loses what
//! was posted meanwhile. This stage sits between a stream's connection (SSE
//! or WebSocket subscription) and its consumer. It remembers the last ids it
//! delivered per timeline (starting from the newest the timeline held when
//! the stream first opened, fetched then, so that a stream that has delivered
//! nothing yet is caught up too); when the connection opens again after a
//! break, it pages forward with `min_id` through the matching REST timeline
//! from a little before the last one (the overlap: a post that federated late
//! carries an id dated by its creation, behind ids already delivered), each
//! page from the newest record of the one before. Ids are opaque strings
//! that only the server orders: nothing here compares them. What it finds is
//! delivered oldest first, marked as caught up, minus what was delivered
//! already (by id, and for statuses by URI); then the live events go
//! through, the same way. Each outage ends with a [`Gap`] saying whether
//! everything was fetched back.
//!
//! A server takes a new subscription a moment after the connection opens
//! (Mastodon subscribes to Redis; over the WebSocket it must first read the
//! subscribe frame), and a busy or stalled one can take seconds. What is
//! published in that moment is in neither the catch-up's pages nor the live
//! stream. So the catch-up is bridged: the first live event of each timeline
//! after a reopen proves the subscription is taken, and before it is
//! delivered the timeline is paged once more, from the newest id delivered
//! up to that event's. Whatever fell in the moment arrives then, caught up,
//! before that event. (A catch-up cut short by its page cap is not bridged:
//! its gap is already reported incomplete.)

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use reqwest::header::HeaderMap;
use tokio::sync::watch;

use crate::Error;
use crate::item::Item;
use crate::transport::context::Context;
use crate::transport::handle::TaskHandle;
use crate::transport::http;
use crate::transport::queue::{Overflow, Pushed, Signal, SignalTx, queue};
use crate::transport::race::{self, First};
use mastostream_proto::{Channel, Event, EventKind, Gap, id_order, percent_encode};

/// The most a catch-up page may weigh: a page of 40 statuses is some
/// hundreds of KiB; this is a server sending without end.
const PAGE_BYTES: usize = 32 * 1024 * 1024;

/// Catch-up settings.
///
/// After an outage the stream's REST timelines are paged forward from the
/// newest id delivered (before any, from where each timeline stood when the
/// stream first opened: one request per timeline then), then a [`Gap`] is
/// reported. A server takes a new
/// subscription a moment after the connection opens, so before the first
/// live event of each timeline after that, the timeline is paged once more,
/// up to that event: what was published in the moment arrives, caught up,
/// ahead of it. That costs one more request per timeline and outage.
///
/// ```
/// let config = mastostream::CatchUpConfig::default().max_pages(100).page_size(20);
/// assert_eq!((config.max_pages, config.page_size), (100, 20));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CatchUpConfig {
    /// Records per REST page, 1 to 40 (Mastodon caps statuses at 40; a
    /// page asked larger comes back at the cap and would read as the last,
    /// so a larger setting is taken as 40, and 0 as 1).
    pub page_size: usize,
    /// Pages per timeline per outage; past it the gap is incomplete.
    pub max_pages: usize,
    /// Stop paging while `X-RateLimit-Remaining` is at or below this.
    pub min_rate_limit_remaining: u64,
    /// How many delivered ids (and status URIs) are remembered to drop
    /// duplicates.
    pub dedup_capacity: usize,
    /// How many of the last records delivered before an outage are paged
    /// again when it ends (20 by default): ids are the server's own and
    /// opaque, and servers date the id of a post that federates late by its
    /// `created_at` (GoToSocial, Mastodon), so such a post can land behind
    /// the newest id delivered. Records already delivered are not delivered
    /// twice.
    pub overlap: usize,
    /// How long after the stream reopens the catch-up starts (zero by
    /// default). What the server publishes while it is still taking the
    /// subscription is fetched anyway, before the first live event (see
    /// above); a wait here only makes that second fetch likelier to be
    /// empty. Live events of the wait are held.
    pub settle: Duration,
    /// The longest a rate-limited (`429`) page waits before it is asked
    /// again (a minute by default). The server's `Retry-After` or
    /// `X-RateLimit-Reset` says how long, clamped to this; without either,
    /// one second. After three refusals in a row the gap is reported
    /// incomplete.
    pub max_rate_limit_wait: Duration,
}

impl Default for CatchUpConfig {
    fn default() -> Self {
        CatchUpConfig {
            page_size: 40,
            max_pages: 10,
            min_rate_limit_remaining: 10,
            dedup_capacity: 10_000,
            overlap: 20,
            settle: Duration::ZERO,
            max_rate_limit_wait: Duration::from_secs(60),
        }
    }
}

impl CatchUpConfig {
    /// Sets [`page_size`](Self::page_size).
    pub fn page_size(mut self, records: usize) -> Self {
        self.page_size = records;
        self
    }

    /// Sets [`max_pages`](Self::max_pages).
    pub fn max_pages(mut self, pages: usize) -> Self {
        self.max_pages = pages;
        self
    }

    /// Sets [`min_rate_limit_remaining`](Self::min_rate_limit_remaining).
    pub fn min_rate_limit_remaining(mut self, remaining: u64) -> Self {
        self.min_rate_limit_remaining = remaining;
        self
    }

    /// Sets [`dedup_capacity`](Self::dedup_capacity).
    pub fn dedup_capacity(mut self, ids: usize) -> Self {
        self.dedup_capacity = ids;
        self
    }

    /// Sets [`overlap`](Self::overlap).
    pub fn overlap(mut self, records: usize) -> Self {
        self.overlap = records;
        self
    }

    /// Sets [`settle`](Self::settle).
    pub fn settle(mut self, wait: Duration) -> Self {
        self.settle = wait;
        self
    }

    /// Sets [`max_rate_limit_wait`](Self::max_rate_limit_wait).
    pub fn max_rate_limit_wait(mut self, wait: Duration) -> Self {
        self.max_rate_limit_wait = wait;
        self
    }
}

/// A REST timeline that mirrors (part of) a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Statuses,
    Notifications,
    Conversations,
}

impl Kind {
    /// The streaming event its records arrive as.
    fn event_name(self) -> &'static str {
        match self {
            Kind::Statuses => "update",
            Kind::Notifications => "notification",
            Kind::Conversations => "conversation",
        }
    }
}

#[derive(Debug)]
struct Source {
    kind: Kind,
    /// Path and fixed query, e.g. `/api/v1/timelines/public?local=true`.
    path: String,
    /// Where paging forward starts: the newest id delivered or fetched, as
    /// the server gave it (ids are opaque: only the server orders them).
    newest: Option<String>,
    /// The ids of the last records delivered, oldest first, up to the
    /// configured overlap: an outage's catch-up starts at the oldest.
    recent: VecDeque<String>,
    /// Caught up after an outage that began then, but no live event has
    /// shown yet that the server has taken the subscription: page once more
    /// before the first.
    unbridged_since: Option<SystemTime>,
}

/// The REST timelines for a stream, as Mastodon maps them.
fn sources(channel: &Channel) -> Vec<Source> {
    let statuses = |path: String| Source {
        kind: Kind::Statuses,
        path,
        newest: None,
        recent: VecDeque::new(),
        unbridged_since: None,
    };
    let notifications = || Source {
        kind: Kind::Notifications,
        path: "/api/v1/notifications?".into(),
        newest: None,
        recent: VecDeque::new(),
        unbridged_since: None,
    };
    let public = |query: &str| statuses(format!("/api/v1/timelines/public?{query}"));
    match channel {
        Channel::User => vec![statuses("/api/v1/timelines/home?".into()), notifications()],
        Channel::UserNotification => vec![notifications()],
        Channel::Public => vec![public("")],
        Channel::PublicMedia => vec![public("only_media=true&")],
        Channel::PublicLocal => vec![public("local=true&")],
        Channel::PublicLocalMedia => vec![public("local=true&only_media=true&")],
        Channel::PublicRemote => vec![public("remote=true&")],
        Channel::PublicRemoteMedia => vec![public("remote=true&only_media=true&")],
        Channel::Hashtag(tag) => vec![statuses(format!(
            "/api/v1/timelines/tag/{}?",
            percent_encode(tag)
        ))],
        Channel::HashtagLocal(tag) => vec![statuses(format!(
            "/api/v1/timelines/tag/{}?local=true&",
            percent_encode(tag)
        ))],
        Channel::List(id) => vec![statuses(format!(
            "/api/v1/timelines/list/{}?",
            percent_encode(id)
        ))],
        Channel::Direct => vec![Source {
            kind: Kind::Conversations,
            path: "/api/v1/conversations?".into(),
            newest: None,
            recent: VecDeque::new(),
            unbridged_since: None,
        }],
        // A stream this version does not name has no timeline to page.
        _ => Vec::new(),
    }
}

/// Where an event stands: its timeline, its paging id (opaque, as the
/// server gave it) and the keys that make it a duplicate when seen before.
struct Position {
    kind: Kind,
    id: String,
    keys: Vec<String>,
}

/// Which timeline an event belongs to, its paging id and its duplicate keys:
/// the id, and for a status its URI too (the same post under another id).
/// Not a boost's URI: Pleroma and Akkoma give a boost the URI of the post
/// it boosts (BDX-town/Akkoma, lib/pleroma/web/mastodon_api/views/
/// status_view.ex, the reblog `render`: `uri: object.data["id"]`), and
/// every boost of a post seen before was dropped as a duplicate.
fn position(event: &Event) -> Option<Position> {
    let kind = match event.name() {
        "update" => Kind::Statuses,
        "notification" => Kind::Notifications,
        "conversation" => Kind::Conversations,
        _ => return None,
    };
    let ids = if event.is_typed() {
        // An entity that could not be built has no position (a consumer
        // sees the error when it asks for the entity).
        Ids::of_entity(event.kind().ok()?)?
    } else {
        // Taken on demand and not built yet: the ids alone are read, so
        // that catch-up does not build every entity. The event has been
        // handed on with its id, so it stands there even if its entity
        // turns out malformed when asked for.
        Ids::read(kind, event)?
    };
    let Ids { id, uri, last } = ids;
    let (id, keys) = match kind {
        Kind::Statuses => {
            let mut keys = vec![format!("s{id}")];
            if let Some(uri) = uri.filter(|uri| !uri.is_empty()) {
                keys.push(format!("u{uri}"));
            }
            (id, keys)
        }
        Kind::Notifications => (id.clone(), vec![format!("n{id}")]),
        Kind::Conversations => {
            // A conversation comes again with each new message: its last status says which.
            let last = last?;
            let key = format!("c{id}:{last}");
            (last, vec![key])
        }
    };
    (!id.is_empty()).then_some(Position { kind, id, keys })
}

/// What catch-up needs of a status, notification or conversation: its id,
/// a status's URI, a conversation's last status's id.
struct Ids {
    id: String,
    uri: Option<String>,
    last: Option<String>,
}

impl Ids {
    fn of_entity(kind: &EventKind) -> Option<Ids> {
        Some(match kind {
            EventKind::Update(status) => Ids {
                id: status.id.clone(),
                uri: status.reblog.is_none().then(|| status.uri.clone()),
                last: None,
            },
            EventKind::Notification(n) => Ids {
                id: n.id.clone(),
                uri: None,
                last: None,
            },
            EventKind::Conversation(c) => Ids {
                id: c.id.clone(),
                uri: None,
                last: c.last_status.as_ref().map(|last| last.id.clone()),
            },
            _ => return None,
        })
    }

    /// Reads only the fields `kind` needs from the payload (the others, of
    /// whatever shape, are skipped).
    fn read(kind: Kind, event: &Event) -> Option<Ids> {
        use std::borrow::Cow;
        #[derive(serde::Deserialize)]
        struct Record<'a> {
            #[serde(borrow)]
            id: IdText<'a>,
        }
        #[derive(serde::Deserialize)]
        struct StatusRecord<'a> {
            #[serde(borrow)]
            id: IdText<'a>,
            #[serde(default, borrow)]
            uri: Option<Cow<'a, str>>,
            #[serde(default)]
            reblog: Option<serde::de::IgnoredAny>,
        }
        #[derive(serde::Deserialize)]
        struct ConversationRecord<'a> {
            #[serde(borrow)]
            id: IdText<'a>,
            #[serde(default, borrow)]
            last_status: Option<Record<'a>>,
        }
        Some(match kind {
            Kind::Statuses => {
                let record: StatusRecord = event.deserialize().ok()?;
                Ids {
                    id: record.id.into_text(),
                    uri: record
                        .uri
                        .filter(|_| record.reblog.is_none())
                        .map(Cow::into_owned),
                    last: None,
                }
            }
            Kind::Notifications => Ids {
                id: event.deserialize::<Record>().ok()?.id.into_text(),
                uri: None,
                last: None,
            },
            Kind::Conversations => {
                let record: ConversationRecord = event.deserialize().ok()?;
                Ids {
                    id: record.id.into_text(),
                    uri: None,
                    last: record.last_status.map(|last| last.id.into_text()),
                }
            }
        })
    }
}

/// An id as servers send it: a string, or (some servers) an integer.
#[derive(Debug, serde::Deserialize)]
#[serde(untagged)]
enum IdText<'a> {
    Text(#[serde(borrow)] std::borrow::Cow<'a, str>),
    Unsigned(u64),
    Signed(i64),
}

impl IdText<'_> {
    fn into_text(self) -> String {
        match self {
            IdText::Text(text) => text.into_owned(),
            IdText::Unsigned(n) => n.to_string(),
            IdText::Signed(n) => n.to_string(),
        }
    }
}

/// The paging id of a raw REST record of `kind`.
fn id_of(kind: Kind, raw: &serde_json::value::RawValue) -> Option<String> {
    let event = Event::parse_owned(kind.event_name(), Some(raw.get().to_owned())).ok()?;
    position(&event).map(|p| p.id)
}

/// Ids delivered lately, bounded.
struct Seen {
    order: VecDeque<String>,
    set: HashSet<String>,
    capacity: usize,
}

impl Seen {
    fn new(capacity: usize) -> Self {
        Seen {
            order: VecDeque::new(),
            set: HashSet::new(),
            capacity: capacity.max(1),
        }
    }

    /// Records `keys`; false if any of them was already there.
    fn insert_all(&mut self, keys: Vec<String>) -> bool {
        if keys.iter().any(|key| self.set.contains(key)) {
            return false;
        }
        for key in keys {
            self.insert(key);
        }
        true
    }

    fn insert(&mut self, key: String) {
        if self.order.len() == self.capacity
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
        }
        self.order.push_back(key.clone());
        self.set.insert(key);
    }
}

/// Puts the catch-up stage in front of `upstream`.
pub(crate) fn wrap(
    context: Arc<Context>,
    mut upstream: TaskHandle,
    config: CatchUpConfig,
    resume_after: Option<String>,
) -> TaskHandle {
    let (tx, signals) = queue(context.queue_limit);
    let (state_tx, state) = watch::channel(upstream.state.borrow().clone());
    let channel = upstream.channel.clone();
    let receiving = upstream.receiving.clone();
    let closer = upstream.closer.clone();
    let malformed_ends = upstream.malformed_ends;
    // Heartbeats pass through; the consumer's handle decides whether to show them.
    upstream.heartbeats = true;
    let mut sources = sources(&channel);
    // Resuming: every status timeline of the stream starts from that id,
    // and the first connection is caught up as if it ended an outage.
    // Notifications and conversations are paged by ids of their own
    // (on Mastodon another, much smaller sequence than a status's): paged
    // from a status id they came back empty, a complete gap over lost
    // notifications. They start where they stand when the stream opens,
    // and the first gap says it is incomplete.
    let outage_since = resume_after.map(|id| {
        for source in &mut sources {
            if source.kind == Kind::Statuses {
                source.newest = Some(id.clone());
            }
        }
        SystemTime::now()
    });
    let mut stage = Stage {
        context,
        sources,
        seen: Seen::new(config.dedup_capacity),
        config,
        channel: channel.clone(),
        tx,
        opened: outage_since.is_some(),
        outage_since,
    };
    let task = tokio::spawn(async move {
        loop {
            let item = match race::first(upstream.next_item(), stage.tx.closed()).await {
                First::A(item) => item,
                First::B(()) => return,
            };
            state_tx.send_replace(upstream.state.borrow().clone());
            match item {
                None => return,
                Some(Err(error)) => {
                    stage.tx.push(Signal::Ended(error));
                    return;
                }
                Some(Ok(item)) => {
                    if !stage.handle(item).await {
                        return;
                    }
                }
            }
        }
    });
    let mut handle = TaskHandle::new(channel, signals, state, receiving, closer, malformed_ends);
    handle.task = Some(task);
    handle
}

struct Stage {
    context: Arc<Context>,
    sources: Vec<Source>,
    seen: Seen,
    config: CatchUpConfig,
    channel: Channel,
    tx: SignalTx,
    outage_since: Option<SystemTime>,
    /// Whether the stream has opened once (and its starting points were fetched).
    opened: bool,
}

impl Stage {
    /// Handles one upstream item; false when the consumer is gone.
    async fn handle(&mut self, item: Item) -> bool {
        match item {
            Item::Event(event) => {
                if let Some(Position { kind, id, keys }) = position(&event) {
                    if !self.bridge(kind, &id).await {
                        return false;
                    }
                    if !self.seen.insert_all(keys) {
                        return true; // already delivered by catch-up
                    }
                    self.delivered(kind, &id);
                }
                self.send(Item::Event(event)).await
            }
            Item::Reconnecting { .. } => {
                // Before the stream first opened nothing was delivered and
                // nothing missed: its first opening (the starting points)
                // is still to come. (Counted as an outage, a refused first
                // connection left every timeline without a starting point.)
                if self.opened {
                    self.outage_since.get_or_insert_with(SystemTime::now);
                }
                self.send(item).await
            }
            Item::Connected if self.outage_since.is_some() => {
                if !self.send(Item::Connected).await {
                    return false;
                }
                let since = self.outage_since.take().unwrap_or_else(SystemTime::now);
                if !self.config.settle.is_zero() {
                    tokio::time::sleep(self.config.settle).await;
                }
                let open = self.catch_up(since).await;
                // A timeline that had no starting point (its fetch failed,
                // or a resumed stream's notifications) gets one now, so the
                // next outage is caught up.
                self.fetch_starting_points().await;
                open
            }
            Item::Connected if !self.opened => {
                self.opened = true;
                if !self.send(Item::Connected).await {
                    return false;
                }
                self.fetch_starting_points().await;
                true
            }
            // Events dropped for a consumer that fell behind on a shared
            // connection: fetched back like an outage's, when there is a
            // timeline to page.
            Item::Lagged { since, .. } if !self.sources.is_empty() => self.catch_up(since).await,
            other => self.send(other).await,
        }
    }

    /// Before the first live event of a reopened timeline: pages it once
    /// more, up to that event, for what was published while the server was
    /// taking the subscription. False when the consumer is gone.
    async fn bridge(&mut self, kind: Kind, live_id: &str) -> bool {
        let Some(index) = self.sources.iter().position(|s| s.kind == kind) else {
            return true;
        };
        let Some(since) = self.sources[index].unbridged_since.take() else {
            return true;
        };
        match self.fetch_back(index, Some(live_id), false).await {
            Some(true) => true,
            // The outage's gap was reported complete; report it again, incomplete.
            Some(false) => self.send_gap(since, false).await,
            None => false,
        }
    }

    /// Queues an item for the consumer, waiting while its queue is full
    /// (this stage holds up nobody but its own stream); false when it is gone.
    async fn send(&self, item: Item) -> bool {
        let pushed = match item {
            Item::Event(event) => {
                let bytes = event.payload().as_str().map_or(0, str::len);
                self.tx
                    .push_event(Item::Event(event), bytes, Overflow::Hold)
            }
            other => {
                if self.tx.push(Signal::Item(other)) {
                    Pushed::Queued
                } else {
                    Pushed::Gone
                }
            }
        };
        match pushed {
            Pushed::Gone => false,
            Pushed::Full => {
                self.tx.room().await;
                !self.tx.is_closed()
            }
            _ => true,
        }
    }

    /// A record of `kind` with `id` went to the consumer: paging goes on
    /// from it. (The latest delivered, not the greatest: ids are the
    /// server's to order. A late post's older id only makes the next
    /// catch-up page over more records, which are not delivered twice.)
    fn delivered(&mut self, kind: Kind, id: &str) {
        let overlap = self.config.overlap;
        for source in self.sources.iter_mut().filter(|s| s.kind == kind) {
            source.newest = Some(id.to_owned());
            if overlap > 0 {
                if source.recent.len() >= overlap {
                    source.recent.pop_front();
                }
                source.recent.push_back(id.to_owned());
            }
        }
    }

    /// When the stream first opens: where each timeline stands (its newest
    /// id, or 0 when it is empty), to catch up from should the stream break
    /// before it delivers anything. Like a reopen, the first live event of
    /// each is bridged to. A timeline whose fetch fails keeps no starting
    /// point until an event gives it one.
    async fn fetch_starting_points(&mut self) {
        let opened = SystemTime::now();
        for index in 0..self.sources.len() {
            let source = &self.sources[index];
            if source.newest.is_some() {
                continue;
            }
            let newest = match self.fetch(source, None, None, 1).await {
                Ok((items, _)) => match items.first() {
                    // An empty timeline: everything to come is newer than "0"
                    // on every server's ids (digits, ULIDs, flake ids).
                    None => Some("0".to_owned()),
                    Some(raw) => id_of(source.kind, raw),
                },
                Err(error) => {
                    tracing::debug!(%error, "no starting point for catch-up");
                    None
                }
            };
            if let Some(id) = newest {
                self.sources[index].newest = Some(id);
                self.sources[index].unbridged_since = Some(opened);
            }
        }
    }

    /// Pages forward through every timeline from its starting point, then
    /// reports the gap.
    async fn catch_up(&mut self, since: SystemTime) -> bool {
        let mut complete = true;
        for index in 0..self.sources.len() {
            // No starting point (its fetch failed): what it missed is unknown.
            if self.sources[index].newest.is_none() {
                complete = false;
                continue;
            }
            match self.fetch_back(index, None, true).await {
                Some(true) => self.sources[index].unbridged_since = Some(since),
                Some(false) => complete = false,
                None => return false,
            }
        }
        self.send_gap(since, complete).await
    }

    async fn send_gap(&self, since: SystemTime, complete: bool) -> bool {
        let gap = Gap::new(self.channel.clone(), since, SystemTime::now(), complete);
        self.send(Item::Event(gap.into_event())).await
    }

    /// [`catch_up_source`](Self::catch_up_source), with an error taken as
    /// an incomplete catch-up: `Some(complete)`, or `None` when the consumer
    /// is gone.
    async fn fetch_back(
        &mut self,
        index: usize,
        below: Option<&str>,
        overlap: bool,
    ) -> Option<bool> {
        match self.catch_up_source(index, below, overlap).await {
            Ok(complete) => complete,
            Err(error) => {
                tracing::debug!(%error, "catch-up stopped");
                Some(false)
            }
        }
    }

    /// One timeline, from the newest id delivered (with `overlap`, from the
    /// oldest of the last few delivered) up to `below` (exclusive) or the
    /// present: `Some(complete)`, or `None` when the consumer is gone. Each
    /// page after the first starts at the newest record of the one before,
    /// as the server ordered it.
    async fn catch_up_source(
        &mut self,
        index: usize,
        below: Option<&str>,
        overlap: bool,
    ) -> Result<Option<bool>, Error> {
        let mut retries_429 = 0;
        let mut pages = 0;
        let source = &self.sources[index];
        let mut cursor = match source.recent.front() {
            Some(oldest) if overlap => Some(oldest.clone()),
            _ => source.newest.clone(),
        };
        while pages < self.config.max_pages {
            let Some(from) = cursor.clone() else {
                return Ok(Some(true));
            };
            let page = self.config.page_size.clamp(1, 40);
            let fetched = self.fetch(&self.sources[index], Some(&from), below, page);
            let (items, headers) = match fetched.await {
                Ok(page) => page,
                Err(Error::Http {
                    status: 429,
                    retry_after,
                    ..
                }) if retries_429 < 3 => {
                    retries_429 += 1;
                    // `retry_after` is already clamped to an hour by the
                    // protocol crate; the setting bounds it further.
                    let wait = Duration::from_secs(retry_after.unwrap_or(1))
                        .min(self.config.max_rate_limit_wait);
                    tracing::debug!(?wait, "rate limited during catch-up");
                    tokio::time::sleep(wait).await;
                    continue;
                }
                Err(error) => return Err(error),
            };
            pages += 1;
            // Three refusals in a row end it, as documented, not three in all.
            retries_429 = 0;
            let full = items.len() >= page;
            let kind = self.sources[index].kind;
            // Delivered oldest first. Mastodon, Pleroma and GoToSocial send
            // a page newest first; Iceshrimp.NET sends one asked with
            // `min_id` oldest first: the ids at its two ends say which. The
            // page's newest record, the last one read, is where the next
            // page starts, and where the next catch-up would.
            let mut records: Vec<(Result<Event, Error>, Option<Position>)> = items
                .into_iter()
                .map(|raw| {
                    let parsed = Event::parse_owned(kind.event_name(), Some(raw.get().to_owned()))
                        .map(Event::mark_caught_up);
                    let at = parsed.as_ref().ok().and_then(position);
                    (parsed, at)
                })
                .collect();
            let mut ids = records
                .iter()
                .filter_map(|(_, at)| at.as_ref().map(|p| &p.id));
            let first = ids.next();
            let ascending = match (first, ids.next_back()) {
                (Some(first), Some(last)) => id_order(first, last).is_lt(),
                _ => false,
            };
            if !ascending {
                records.reverse();
            }
            let mut page_newest = None;
            for (parsed, at) in records {
                let event = match parsed {
                    Ok(event) => event,
                    Err(error) => {
                        if !self.send(Item::Skipped(error)).await {
                            return Ok(None);
                        }
                        continue;
                    }
                };
                let Some(Position { id, keys, .. }) = at else {
                    continue;
                };
                page_newest = Some(id.clone());
                if !self.seen.insert_all(keys) {
                    continue;
                }
                self.delivered(kind, &id);
                if !self.send(Item::Event(event)).await {
                    return Ok(None);
                }
            }
            if let Some(newest) = &page_newest {
                self.sources[index].newest = Some(newest.clone());
            }
            if !full {
                return Ok(Some(true));
            }
            cursor = page_newest;
            let remaining = headers
                .get("x-ratelimit-remaining")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if remaining.is_some_and(|r| r <= self.config.min_rate_limit_remaining) {
                tracing::debug!(?remaining, "catch-up stops to spare the rate limit");
                return Ok(Some(false));
            }
        }
        Ok(Some(false))
    }

    /// One page of at most 40 entities, read up to [`PAGE_BYTES`].
    async fn fetch(
        &self,
        source: &Source,
        min_id: Option<&str>,
        max_id: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<Box<serde_json::value::RawValue>>, HeaderMap), Error> {
        let mut url = self.context.server.clone();
        let (path, query) = source.path.split_once('?').unwrap_or((&source.path, ""));
        url.set_path(path);
        let cursor = |key: &str, id: Option<&str>| {
            id.map_or(String::new(), |id| format!("{key}={}&", percent_encode(id)))
        };
        let max_id = cursor("max_id", max_id);
        let min_id = cursor("min_id", min_id);
        url.set_query(Some(&format!("{query}{max_id}{min_id}limit={limit}")));
        let mut request = self
            .context
            .http
            .get(url)
            .timeout(self.context.request_timeout);
        if let Some(token) = &self.context.token {
            request = request.bearer_auth(token.expose());
        }
        let response = http::send(request).await.map_err(http::network)?;
        if !response.status().is_success() {
            return Err(http::status_error(response).await);
        }
        let headers = response.headers().clone();
        let body = http::body_within(response, PAGE_BYTES).await?;
        let items: Vec<Box<serde_json::value::RawValue>> = serde_json::from_slice(&body)
            .map_err(|e| Error::malformed("catch-up page", e, &String::from_utf8_lossy(&body)))?;
        Ok((items, headers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = format!(
            "{}/../../fixtures/entities/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn keys(event: &Event) -> Option<(Kind, String, Vec<String>)> {
        position(event).map(|p| (p.kind, p.id, p.keys))
    }

    /// An event taken on demand stands where the same event built at once
    /// stands, and is still not built afterwards.
    #[test]
    fn positions_read_on_demand_match_the_built_entities() {
        for (name, file) in [
            ("update", "status.json"),
            ("update", "status_unicode.json"),
            ("notification", "notification.json"),
            ("conversation", "conversation.json"),
        ] {
            let data = fixture(file);
            let built = Event::parse(name, Some(&data)).unwrap();
            let lazy = Event::on_demand(name, Some(data)).unwrap();
            let expected = keys(&built);
            assert!(expected.is_some(), "{file}");
            assert_eq!(keys(&lazy), expected, "{file}");
            assert!(!lazy.is_typed(), "{file}: catch-up built the entity");
        }
    }

    /// A boost carrying the URI of the post it boosts (Pleroma, Akkoma)
    /// is not a duplicate of that post, nor of another boost of it.
    #[test]
    fn boosts_are_not_duplicates_of_what_they_boost() {
        let original: serde_json::Value = serde_json::from_str(&fixture("status.json")).unwrap();
        let uri = original["uri"].as_str().unwrap().to_owned();
        let boost = |id: &str| {
            let mut boost = original.clone();
            boost["id"] = id.into();
            boost["reblog"] = original.clone();
            boost.to_string()
        };
        let text = original.to_string();
        let mut seen = Seen::new(100);
        for (data, on_demand) in [
            (text.clone(), false),
            (boost("901"), false),
            (boost("902"), true),
        ] {
            let event = if on_demand {
                Event::on_demand("update", Some(data)).unwrap()
            } else {
                Event::parse("update", Some(&data)).unwrap()
            };
            let (_, _, keys) = keys(&event).unwrap();
            assert!(
                seen.insert_all(keys.clone()),
                "{keys:?} taken for a duplicate"
            );
        }
        // The post itself again is one.
        let (_, _, keys) = keys(&Event::parse("update", Some(&text)).unwrap()).unwrap();
        assert!(keys.contains(&format!("u{uri}")));
        assert!(!seen.insert_all(keys));
    }

    #[test]
    fn integer_ids_and_missing_ones() {
        let lazy = |name: &str, data: &str| Event::on_demand(name, Some(data.to_owned())).unwrap();
        let event = lazy("notification", r#"{"id":42,"type":"mention"}"#);
        assert_eq!(
            keys(&event),
            Some((Kind::Notifications, "42".into(), vec!["n42".into()]))
        );
        assert_eq!(keys(&lazy("notification", r#"{"type":"mention"}"#)), None);
        assert_eq!(keys(&lazy("update", r#"{"id":1.5}"#)), None);
        assert_eq!(keys(&lazy("conversation", r#"{"id":"3"}"#)), None);
        assert_eq!(
            keys(&lazy(
                "conversation",
                r#"{"id":"3","last_status":{"id":"9"}}"#
            )),
            Some((Kind::Conversations, "9".into(), vec!["c3:9".into()]))
        );
        // Fields catch-up does not need are not read, whatever their shape.
        assert_eq!(
            keys(&lazy(
                "notification",
                r#"{"id":"5","uri":5,"last_status":"x"}"#
            )),
            Some((Kind::Notifications, "5".into(), vec!["n5".into()]))
        );
        assert_eq!(
            keys(&lazy("update", r#"{"id":"6","last_status":"x"}"#)),
            Some((Kind::Statuses, "6".into(), vec!["s6".into()]))
        );
    }
}
