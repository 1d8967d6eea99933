//! The sans-IO protocol core: bytes in, events out. No sockets, no clocks.
//!
//! - [`SseDecoder`] frames a Server-Sent Events body incrementally.
//! - [`Event::parse`] gives an event's data its typed meaning.
//! - [`EventDecoder`] does both, for a Mastodon SSE stream.
//! - [`Stream`] names every Mastodon stream, in each of its wire forms.
//! - [`Reconnector`] and [`Liveness`] decide, from errors and time, when to
//!   reconnect and when a silent stream is dead.
//! - [`entities`] holds the typed Mastodon entities.

pub(crate) mod decoder;
pub mod entities;
mod event;
pub mod liveness;
pub mod reconnect;
pub mod sse;
mod stream;
mod timestamp;
mod ws_frame;

pub use decoder::{EventDecoder, StreamItem};
pub use event::{Event, EventKind, Gap, KNOWN_EVENTS, Payload};
pub use liveness::{Liveness, LivenessEvent};
pub use reconnect::{Action, ReconnectPolicy, Reconnector};
pub use sse::{SseDecoder, SseError, SseItem, SseMessage};
pub use stream::{
    STREAM_NAMES, Stream, StreamError, normalize_hashtag, percent_encode, query_flag,
};
pub use timestamp::parse_timestamp;
pub use ws_frame::{WsEnvelope, WsMessage, decode_ws_envelope, decode_ws_frame};
