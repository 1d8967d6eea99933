//! # mastostream
//!
//! A client for Mastodon's streaming API (and the servers that speak it):
//! every stream over SSE or one multiplexed WebSocket, reconnects with
//! backoff, stall detection, catch-up after outages, and typed,
//! forward-compatible events.
//!
//! Start with a [`Client`]; [`Client::stream`] gives an [`EventStream`], a
//! `futures::Stream` of [`Item`]s in which only the end is an `Err`:
//!
//! ```no_run
//! use mastostream::{Channel, Client, EventKind};
//!
//! # async fn run(token: String) -> Result<(), mastostream::Error> {
//! let client = Client::builder("https://mastodon.example").token(token).build()?;
//! let mut events = client.stream(Channel::Hashtag("rust".into())); // reconnects by itself
//! while let Some(event) = events.next_event().await? {
//!     if let EventKind::Update(status) = event.kind()? {
//!         println!("{}", status.content);
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! [`Event::kind`] is the typed form; [`Event::payload`] the text as sent,
//! always there. By default entities are built as events arrive (and one
//! that cannot be is skipped, or with reconnect off ends the stream);
//! [`ClientBuilder::parse_on_demand`] builds them only when `kind()` is
//! called, for consumers that read the payload or a few fields of it
//! ([`Event::deserialize`] into a struct of borrowed fields).
//!
//! The same engine has two more front-ends: [`listener`]s with a method per
//! event, as in Mastodon.py, driven by [`Client::stream_to`] or by the
//! [`blocking`] client (calls that return only when the stream ends, and
//! background handles with `close()` / `is_alive()` / `is_receiving()`).
//! [`Client::multiplex`] puts many subscriptions on one WebSocket.
//!
//! Cargo features, all on by default: `websocket` (the multiplexed
//! WebSocket and `Transport::Auto`'s switch to it), `blocking` (the
//! [`blocking`] front-end) and `catch-up` (REST catch-up after outages).
//! Without them the library streams over SSE alone. It asks tokio for its
//! runtime, timers, sockets and sync primitives, never for `signal`.
//!
//! Below it all is the sans-IO core, the `mastostream-proto` crate, fed
//! bytes and time; [`proto`] re-exports its decoders for decoding captured
//! bytes yourself:
//!
//! ```
//! use mastostream::proto::{EventDecoder, StreamItem};
//!
//! let mut decoder = EventDecoder::new();
//! decoder.feed(b":)\nevent: delete\ndata: 103270115826048975\n\n");
//! assert_eq!(decoder.poll().unwrap().unwrap(), StreamItem::Heartbeat);
//! let Some(Ok(StreamItem::Event(event))) = decoder.poll() else { unreachable!() };
//! assert_eq!(event.name(), "delete");
//! ```

#![warn(missing_docs)]

#[cfg(feature = "blocking")]
pub mod blocking;
mod client;
mod event_stream;
mod item;
pub mod listener;
#[cfg(feature = "websocket")]
mod multiplex;
mod state;
mod token;
mod transport;

/// The sans-IO decoders, for bytes you read yourself (a capture, a file).
pub mod proto {
    pub use mastostream_proto::{
        EventDecoder, SseDecoder, SseError, SseItem, SseMessage, StreamItem, WsMessage,
        decode_ws_frame,
    };
}

pub use client::{Client, ClientBuilder, DEFAULT_QUEUE_LIMIT};
pub use event_stream::EventStream;
pub use item::Item;
pub use listener::{CallbackListener, StreamListener, dispatch, dispatch_item};
pub use mastostream_proto::{
    Channel, ChannelError, Error, Event, EventKind, Gap, Payload, ReconnectPolicy, Software,
    entities,
};
#[cfg(feature = "websocket")]
pub use multiplex::Multiplex;
/// The rustls this crate is built with, for [`ClientBuilder::tls_config`].
pub use rustls;
pub use state::ConnectionState;
#[cfg(feature = "catch-up")]
pub use transport::catch_up::CatchUpConfig;
pub use transport::context::{Transport, WsAuth};
