//! # mastostream-proto
//!
//! The sans-IO core of [mastostream]: Mastodon's streaming protocol as plain
//! values, fed bytes and time, returning events and decisions. It opens no
//! socket, spawns nothing and reads no clock — the drivers in `mastostream`
//! (the client) and `mastostream-testkit` (the test server) do, so the two
//! ends share one reading of every name and encoding.
//!
//! - [`SseDecoder`] frames a Server-Sent Events body incrementally;
//!   [`EventDecoder`] adds [`Event::parse`] for a Mastodon SSE stream.
//! - [`decode_ws_envelope`] / [`decode_ws_frame`] read the multiplexed
//!   WebSocket's frames; [`read_label`] says which stream an event is for,
//!   in Mastodon's labels and those of the other servers.
//! - [`Channel`] names every Mastodon stream in each of its wire forms, with
//!   [`Channel::Other`] for a server's own.
//! - [`Reconnector`] and [`Liveness`] decide, from errors and instants given to
//!   them, when to reconnect and when a silent stream is dead.
//! - [`ProxyRules`] decides, as curl does from its environment variables,
//!   which proxy (if any) a connection to a host goes through.
//! - [`Software`] tells the server software from its instance document,
//!   and which of Mastodon's streams it lacks.
//! - [`entities`] holds the typed, forward-compatible Mastodon entities;
//!   [`Error`] is the one error type.
//!
//! ```
//! use mastostream_proto::{EventDecoder, EventKind, StreamItem};
//!
//! let mut decoder = EventDecoder::new();
//! decoder.feed(b":)\nevent: delete\ndata: 103270115826048975\n\n");
//! assert_eq!(decoder.poll().unwrap().unwrap(), StreamItem::Heartbeat);
//! let Some(Ok(StreamItem::Event(event))) = decoder.poll() else { unreachable!() };
//! assert_eq!(event.kind().unwrap(), &EventKind::Delete("103270115826048975".into()));
//! ```
//!
//! [mastostream]: https://docs.rs/mastostream

#![warn(missing_docs)]

mod channel;
mod decoder;
pub mod entities;
mod error;
mod event;
mod ids;
mod json_check;
mod json_string;
mod label;
pub mod liveness;
mod proxy;
pub mod reconnect;
pub mod server_wait;
mod software;
pub mod sse;
mod timestamp;
mod ws_frame;

pub use channel::{
    CHANNEL_NAMES, Channel, ChannelError, normalize_hashtag, percent_encode, query_flag,
};
pub use decoder::{EventDecoder, StreamItem, sse_error};
pub use error::{Error, human_duration, reason_phrase};
pub use event::{Event, EventKind, Gap, KNOWN_EVENTS, Payload};
pub use ids::id_order;
pub use label::{Label, read_label};
pub use liveness::{Liveness, LivenessEvent};
pub use proxy::{ProxyRules, redact_proxy_url};
pub use reconnect::{Action, ReconnectPolicy, Reconnector};
pub use software::{Software, WebSocketToken};
pub use sse::{SseDecoder, SseError, SseItem, SseMessage};
pub use timestamp::parse_timestamp;
pub use ws_frame::{WsEnvelope, WsMessage, decode_ws_envelope, decode_ws_frame};
