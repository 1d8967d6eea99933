//! What a stream yields besides its end: events, and the transient
//! conditions around them.

use std::time::{Duration, SystemTime};

use crate::Error;
use mastostream_proto::Event;

/// One item of an [`EventStream`](crate::EventStream), or of the listener
/// front-ends' calls.
///
/// Only what ends the stream is an `Err`; everything here is transient, so
/// the idiomatic loop is right:
///
/// ```no_run
/// # async fn run(mut events: mastostream::EventStream) -> Result<(), mastostream::Error> {
/// use futures_util::TryStreamExt;
/// use mastostream::Item;
///
/// while let Some(item) = events.try_next().await? {
///     match item {
///         Item::Event(event) => println!("{}", event.name()),
///         Item::Reconnecting { delay, reason, .. } => eprintln!("reconnecting in {delay:?}: {reason}"),
///         _ => {}
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Item {
    /// An event from the server (or, with catch-up, fetched back; or a
    /// [`Gap`](mastostream_proto::Gap) report).
    Event(Event),
    /// A heartbeat: the connection is alive. Only when asked for
    /// ([`EventStream::with_heartbeats`](crate::EventStream::with_heartbeats)).
    Heartbeat,
    /// An event that could not be decoded was skipped; the stream goes on.
    Skipped(Error),
    /// A connection is being opened (the first, or again after a wait).
    Connecting,
    /// The connection is open: the server answered with an event stream, or
    /// the WebSocket is up and the subscription sent.
    Connected,
    /// The connection broke (or could not be made); the next attempt starts
    /// after `delay`.
    Reconnecting {
        /// Attempts since the last stable connection, from 1.
        attempt: u32,
        /// The wait before the next attempt.
        delay: Duration,
        /// Why the connection broke.
        reason: Error,
    },
    /// The consumer fell behind while its connection was shared with other
    /// subscriptions, and past the queue's bound `lost` events were dropped
    /// for it, the first at `since`. With catch-up on, the stage fetches them
    /// back and reports a [`Gap`](mastostream_proto::Gap) instead.
    Lagged {
        /// How many events were dropped.
        lost: u64,
        /// When the first was dropped.
        since: SystemTime,
    },
}

impl Item {
    /// The event, if this is one.
    pub fn into_event(self) -> Option<Event> {
        match self {
            Item::Event(event) => Some(event),
            _ => None,
        }
    }

    /// Whether this is a lifecycle notice that later ones make stale
    /// (a queue keeps only the newest few of a run of them).
    pub(crate) fn is_notice(&self) -> bool {
        matches!(
            self,
            Item::Connecting | Item::Connected | Item::Reconnecting { .. } | Item::Skipped(_)
        )
    }
}
