//! Connection states a stream goes through, for handles and listeners to watch.

use std::time::Duration;

use crate::Error;
use crate::item::Item;

/// Where a stream's connection stands.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ConnectionState {
    /// Opening the connection (the first time, or after a wait).
    Connecting,
    /// The server answered with an event stream.
    Open,
    /// The connection broke; the next attempt starts after `delay`.
    Reconnecting {
        /// Attempts since the last stable connection, from 1.
        attempt: u32,
        /// The wait before it.
        delay: Duration,
        /// Why the last connection broke.
        reason: Error,
    },
    /// The stream ended for good: closed by the user (`None`) or by an error.
    Closed(Option<Error>),
}

impl ConnectionState {
    /// Whether the stream has ended for good.
    pub fn is_closed(&self) -> bool {
        matches!(self, ConnectionState::Closed(_))
    }

    /// Whether a connection is open now.
    pub fn is_open(&self) -> bool {
        matches!(self, ConnectionState::Open)
    }

    /// The item that tells a consumer of this change (none for the end,
    /// which is the stream's last `Err` or its `None`).
    pub(crate) fn as_item(&self) -> Option<Item> {
        match self {
            ConnectionState::Connecting => Some(Item::Connecting),
            ConnectionState::Open => Some(Item::Connected),
            ConnectionState::Reconnecting {
                attempt,
                delay,
                reason,
            } => Some(Item::Reconnecting {
                attempt: *attempt,
                delay: *delay,
                reason: reason.clone(),
            }),
            ConnectionState::Closed(_) => None,
        }
    }
}

pub(crate) use mastostream_proto::human_duration;
