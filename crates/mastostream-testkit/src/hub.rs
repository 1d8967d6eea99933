//! The connection registry: who is subscribed to what, and delivery to them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use mastostream_proto::Channel;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::{mpsc, watch};

use crate::faults::FaultState;
use crate::ids::IdGenerator;
use crate::publish::{Encoded, Publish};
use crate::stamp::{self, Aliases};
use crate::store::{StatusFacts, Store};
use crate::traffic::Traffic;

/// How a connection streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// Server-Sent Events.
    Sse,
    /// WebSocket.
    Websocket,
}

/// What the hub sends a connection's task.
#[derive(Debug, Clone)]
pub enum Outgoing {
    /// An event, for the connection's subscription `stream` (as the client spelled it).
    Event {
        /// The framed event.
        encoded: Arc<Encoded>,
        /// The subscription it matched.
        stream: Channel,
    },
    /// Raw bytes for an SSE body (the `raw` fault).
    Raw(Bytes),
}

/// An open streaming connection, as `GET /api/testkit/connections` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectionInfo {
    /// A number unique for the server's lifetime.
    pub id: u64,
    /// SSE or WebSocket.
    pub transport: Transport,
    /// Its subscriptions, in WebSocket `stream` array form.
    pub streams: Vec<Vec<String>>,
}

struct Connection {
    transport: Transport,
    subscriptions: Vec<Channel>,
    tx: mpsc::UnboundedSender<Outgoing>,
}

/// Shared state of one test server.
pub struct Hub {
    next_connection: AtomicU64,
    connections: Mutex<HashMap<u64, Connection>>,
    store: Mutex<Store>,
    ids: IdGenerator,
    aliases: Mutex<Aliases>,
    /// Bumped whenever a connection opens, closes, subscribes or
    /// unsubscribes, and when a timeline page is served: what tests wait on
    /// instead of sleeping.
    changes: watch::Sender<u64>,
    /// REST timeline requests answered, with a page or a refusal fault
    /// (bumps `changes` too).
    pages_served: AtomicU64,
    /// The faults connections watch.
    pub faults: FaultState,
    /// Connections and requests, as they reached the server.
    pub traffic: Traffic,
    /// Which server it behaves as.
    pub flavour: crate::Flavour,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking test thread must not poison the server for the others.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Removes its connection from the registry when the connection's task ends.
pub struct Registration {
    hub: Arc<Hub>,
    /// The connection's id.
    pub id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        lock(&self.hub.connections).remove(&self.id);
        self.hub.changed();
    }
}

impl Hub {
    /// A hub whose REST store keeps `capacity` records per collection.
    pub fn new(capacity: usize, flavour: crate::Flavour) -> Hub {
        Hub {
            next_connection: AtomicU64::new(1),
            connections: Mutex::new(HashMap::new()),
            store: Mutex::new(Store::with_capacity(capacity)),
            ids: IdGenerator::with_format(flavour.id_format()),
            aliases: Mutex::new(Aliases::with_capacity(capacity)),
            changes: watch::Sender::new(0),
            pages_served: AtomicU64::new(0),
            faults: FaultState::default(),
            traffic: Traffic::default(),
            flavour,
        }
    }

    /// Registers a connection; events for it arrive on the returned receiver.
    pub fn register(
        self: &Arc<Self>,
        transport: Transport,
        subscriptions: Vec<Channel>,
    ) -> (Registration, mpsc::UnboundedReceiver<Outgoing>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let id = self.next_connection.fetch_add(1, Ordering::Relaxed);
        lock(&self.connections).insert(
            id,
            Connection {
                transport,
                subscriptions,
                tx,
            },
        );
        let registration = Registration {
            hub: self.clone(),
            id,
        };
        self.changed();
        (registration, rx)
    }

    /// How this server spells ids.
    pub fn id_format(&self) -> crate::ids::IdFormat {
        self.ids.format
    }

    /// Counts a REST timeline page answered (what a client's catch-up
    /// fetches), for tests that wait on it.
    pub fn page_served(&self) {
        self.pages_served.fetch_add(1, Ordering::Relaxed);
        self.changed();
    }

    /// How many REST timeline pages were answered with a page.
    pub fn pages_served(&self) -> u64 {
        self.pages_served.load(Ordering::Relaxed)
    }

    fn changed(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Wakes whenever the connections or their subscriptions change.
    pub fn watch_changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Adds a subscription; a duplicate (same channel) is ignored, as Mastodon does.
    pub fn subscribe(&self, connection: u64, stream: Channel) {
        if let Some(c) = lock(&self.connections).get_mut(&connection)
            && !c.subscriptions.iter().any(|s| s.matches(&stream))
        {
            c.subscriptions.push(stream);
        } else {
            return;
        }
        self.changed();
    }

    /// Removes a subscription; says whether there was one.
    pub fn unsubscribe(&self, connection: u64, stream: &Channel) -> bool {
        let mut connections = lock(&self.connections);
        let Some(c) = connections.get_mut(&connection) else {
            return false;
        };
        let before = c.subscriptions.len();
        c.subscriptions.retain(|s| !s.matches(stream));
        let removed = before != c.subscriptions.len();
        drop(connections);
        if removed {
            self.changed();
        }
        removed
    }

    /// The open streaming connections.
    pub fn connections(&self) -> Vec<ConnectionInfo> {
        let mut list: Vec<ConnectionInfo> = lock(&self.connections)
            .iter()
            .map(|(id, c)| ConnectionInfo {
                id: *id,
                transport: c.transport,
                streams: c
                    .subscriptions
                    .iter()
                    .map(|s| s.ws_stream_array().into_iter().map(str::to_owned).collect())
                    .collect(),
            })
            .collect();
        list.sort_by_key(|c| c.id);
        list
    }

    /// Writes raw bytes to every SSE connection; returns how many got them.
    pub fn send_raw(&self, bytes: Bytes) -> usize {
        lock(&self.connections)
            .values()
            .filter(|c| c.transport == Transport::Sse)
            .filter(|c| c.tx.send(Outgoing::Raw(bytes.clone())).is_ok())
            .count()
    }

    /// Delivers an event to every matching subscription, records it for the
    /// REST timelines, and returns the number of deliveries.
    pub fn publish(&self, mut publish: Publish) -> usize {
        let targets = self.record(&mut publish);
        let data = publish.data();
        let mut encoded = Encoded::new(&publish.event, data.as_deref());
        encoded.local_only = publish.payload["local_only"] == Value::Bool(true);
        if self.flavour == crate::Flavour::Mastodon41
            && publish.event == "update"
            && let Some(status) = publish.payload.as_object()
            && !status.contains_key("filtered")
        {
            let mut filtered = status.clone();
            filtered.insert("filtered".into(), Value::Array(Vec::new()));
            let text = Value::Object(filtered).to_string();
            encoded.with_filtered = Some(Arc::new(Encoded::new("update", Some(&text))));
        }
        self.deliver(&Arc::new(encoded), &targets)
    }

    /// Sends an already framed event to every subscription matching one of `targets`.
    pub fn deliver(&self, encoded: &Arc<Encoded>, targets: &[Channel]) -> usize {
        let connections = lock(&self.connections);
        let mut delivered = 0;
        for connection in connections.values() {
            for subscription in &connection.subscriptions {
                // glitch-soc's own streams read the public timelines.
                let reads = crate::flavour::reads_timeline(subscription);
                let reads = reads.as_ref().unwrap_or(subscription);
                if targets.iter().any(|t| reads.matches(t)) {
                    let out = Outgoing::Event {
                        encoded: encoded.clone(),
                        stream: subscription.clone(),
                    };
                    delivered += connection.tx.send(out).is_ok() as usize;
                }
            }
        }
        delivered
    }

    /// The streams an event goes to, as Mastodon would send it. Stamps the
    /// payload's ids and times as `publish.stamp` says, and records statuses,
    /// notifications and conversations for the REST side.
    pub fn record(&self, publish: &mut Publish) -> Vec<Channel> {
        let mut store = lock(&self.store);
        // Stamped under the store's lock, so ids are recorded in the order
        // they are handed out.
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        stamp::apply(publish, &self.ids, &mut lock(&self.aliases), now);
        let explicit = publish.stream.clone();
        match publish.event.as_str() {
            "update" | "status.update" if publish.payload.is_object() => {
                let id = self.key(&publish.payload["id"]);
                let facts = StatusFacts::of(&publish.payload);
                let targets = match explicit {
                    Some(stream) => vec![stream],
                    None => public_fanout(&facts),
                };
                let json: Arc<str> = publish.payload.to_string().into();
                if publish.event == "update" || store.status(id).is_some() {
                    store.put_status(id, json, &facts, &targets);
                }
                targets
            }
            "delete" => {
                let id = publish.data().and_then(|d| self.ids.format.read(&d));
                let removed = id.and_then(|id| store.delete_status(id));
                match (explicit, removed) {
                    (Some(stream), _) => vec![stream],
                    (None, Some(status)) => {
                        let facts = StatusFacts {
                            local: status.local,
                            has_media: status.has_media,
                            tags: status.tags.clone(),
                            public_visibility: status.public,
                        };
                        let mut targets = public_fanout(&facts);
                        if status.home {
                            targets.push(Channel::User);
                        }
                        targets.extend(status.lists.iter().cloned().map(Channel::List));
                        targets
                    }
                    (None, None) => vec![
                        Channel::Public,
                        Channel::PublicMedia,
                        Channel::PublicLocal,
                        Channel::PublicLocalMedia,
                        Channel::PublicRemote,
                        Channel::PublicRemoteMedia,
                    ],
                }
            }
            "notification" if publish.payload.is_object() => {
                let id = self.key(&publish.payload["id"]);
                store.put_notification(id, publish.payload.to_string().into());
                match explicit {
                    // Mastodon publishes a notification on both of the user's channels.
                    None | Some(Channel::User) => vec![Channel::User, Channel::UserNotification],
                    Some(stream) => vec![stream],
                }
            }
            "conversation" if publish.payload.is_object() => {
                let conversation_id = match &publish.payload["id"] {
                    Value::String(id) => id.clone(),
                    Value::Number(n) => n.to_string(),
                    // Only a verbatim publish gets here without an id.
                    _ => self.ids.write(self.ids.next()),
                };
                let key = self.key(&publish.payload["last_status"]["id"]);
                store.put_conversation(&conversation_id, key, publish.payload.to_string().into());
                vec![explicit.unwrap_or(Channel::Direct)]
            }
            // Pleroma sends a chat message's update to the user's stream and
            // to its chat stream (kphrx/pleroma,
            // lib/pleroma/web/activity_pub/side_effects.ex: the topics
            // `["user", "user:pleroma_chat"]`).
            "pleroma:chat_update" => match explicit {
                Some(stream) => vec![stream],
                None => vec![
                    Channel::User,
                    Channel::Other {
                        name: crate::flavour::PLEROMA_CHAT.to_owned(),
                        params: Vec::new(),
                    },
                ],
            },
            // Announcements, filters_changed and anything else go to the user's stream.
            _ => vec![explicit.unwrap_or(Channel::User)],
        }
    }

    /// The key a record is stored under: its numeric id (later fresh ids
    /// sort after it), or for a verbatim one without an id, a fresh key that
    /// the payload does not show.
    fn key(&self, id: &Value) -> u64 {
        match self.ids.read(id) {
            Some(id) => {
                self.ids.observe(id);
                id
            }
            None => self.ids.next(),
        }
    }

    /// A fresh id, later than every id seen.
    pub fn next_id(&self) -> u64 {
        self.ids.next()
    }

    /// The REST store.
    pub fn store(&self) -> MutexGuard<'_, Store> {
        lock(&self.store)
    }
}

/// The public streams a public status goes to: public, local or remote, their
/// media variants, and a hashtag stream per tag.
pub fn public_fanout(facts: &StatusFacts) -> Vec<Channel> {
    if !facts.public_visibility {
        return Vec::new();
    }
    let mut targets = vec![Channel::Public];
    targets.push(if facts.local {
        Channel::PublicLocal
    } else {
        Channel::PublicRemote
    });
    if facts.has_media {
        targets.push(Channel::PublicMedia);
        targets.push(if facts.local {
            Channel::PublicLocalMedia
        } else {
            Channel::PublicRemoteMedia
        });
    }
    let mut tags = facts.tags.clone();
    tags.sort();
    tags.dedup();
    for tag in tags {
        if facts.local {
            targets.push(Channel::HashtagLocal(tag.clone()));
        }
        targets.push(Channel::Hashtag(tag));
    }
    targets
}
