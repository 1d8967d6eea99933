//! # mastostream
//!
//! A client for Mastodon's streaming API. This crate holds:
//!
//! - [`proto`]: the sans-IO protocol core — an incremental SSE decoder, typed
//!   events and entities. Fed bytes, it returns events; it owns no socket.
//! - [`listener`]: the [`StreamListener`] trait and the closure-based
//!   [`CallbackListener`], and [`dispatch`] to drive them.
//! - [`Error`]: the one error type.
//!
//! ```
//! use mastostream::proto::{EventDecoder, StreamItem};
//! use mastostream::{dispatch_item, CallbackListener};
//!
//! let mut listener = CallbackListener::new()
//!     .on_delete(|id| println!("status {id} was deleted"))
//!     .on("some.future_event", |event| println!("{:?}", event.payload()));
//! let mut decoder = EventDecoder::new();
//! decoder.feed(b":)\nevent: delete\ndata: 103270115826048975\n\n");
//! while let Some(item) = decoder.poll() {
//!     match item {
//!         Ok(item) => dispatch_item(item, &mut listener),
//!         Err(error) => eprintln!("skipped: {error}"),
//!     }
//! }
//! ```

#![warn(missing_docs)]

pub mod blocking;
mod client;
mod event_stream;
pub mod listener;
pub use mastostream_proto as proto;
mod state;
mod token;
mod transport;

pub use client::{Client, ClientBuilder, Transport, WsAuth};
pub use event_stream::EventStream;
pub use listener::{CallbackListener, StreamListener, dispatch, dispatch_item};
pub use proto::Error;
pub use proto::{Channel, Event, EventKind, Payload, ReconnectPolicy, StreamItem};
pub use state::ConnectionState;
pub use token::Token;
pub use transport::catch_up::CatchUpConfig;
pub use transport::mux::Multiplex;
