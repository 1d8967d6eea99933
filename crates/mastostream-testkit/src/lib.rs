//! # mastostream-testkit
//!
//! A Mastodon-compatible streaming server for tests: the same bytes as
//! Mastodon 4.6.5's streaming server on SSE and WebSocket, the REST endpoints a
//! streaming client touches (instance discovery, timelines, notifications,
//! conversations), and control endpoints to publish events and inject faults.
//!
//! ```
//! use mastostream_proto::Channel;
//! use mastostream_testkit::{Fault, Publish, TestServer};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
//! let server = TestServer::builder().token("secret").start().await?;
//! println!("streaming at {}/api/v1/streaming/public", server.url());
//! // Nobody is connected yet, so nobody receives it; it still lands in the timelines.
//! assert_eq!(server.publish(Publish::new("delete", "42").to(Channel::Public)), 0);
//! server.fault(Fault::Disconnect).unwrap();
//! server.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! ## Control endpoints
//!
//! - `POST /api/testkit/publish` with `{"stream": NAME | [NAME, TAG_OR_LIST],
//!   "event": E, "payload": VALUE}` delivers one event to every matching
//!   subscription and answers `{"delivered": N}`. Without `stream`, `update`,
//!   `status.update` and `delete` fan out as Mastodon's do (public,
//!   public:local or public:remote, their `:media` variants, a hashtag stream
//!   per tag), `notification` goes to `user` and `user:notification`,
//!   `conversation` to `direct`, anything else to `user`. A status or
//!   notification without a numeric `id` gets a fresh snowflake id and
//!   `created_at` now; `"stamp": "live"` restamps even given ones, as a live
//!   server would, and `"stamp": "verbatim"` fills in nothing (see [`Stamp`]).
//! - `POST /api/testkit/faults` with `{"kind":"disconnect"}`,
//!   `{"kind":"stall","seconds":S}`,
//!   `{"kind":"reject","status":503,"count":N,"retry_after":S}` or
//!   `{"kind":"raw","bytes":"..."}`.
//! - `GET /api/testkit/connections`: `[{"id", "transport", "streams"}]`,
//!   with the count of changes so far in `x-testkit-changes`;
//!   `?changed_after=N` waits (up to 10 s) for a change past N.
//!
//! One user owns every token: all connections share one home timeline,
//! notifications and conversations.

#![warn(missing_docs)]

mod auth;
mod control;
mod faults;
mod flavour;
mod http;
mod hub;
mod ids;
pub mod nats;
pub mod nginx;
pub mod programs;
mod publish;
pub mod replay;
mod rest;
mod router;
mod server;
mod sse;
mod stamp;
mod state;
mod store;
pub mod tinyproxy;
mod tls;
mod traffic;
mod ws;

pub use faults::Fault;
pub use flavour::{AKKOMA_ACCOUNT_ID, Flavour, Refusal};
pub use hub::{ConnectionInfo, Transport};
pub use publish::Publish;
pub use server::{BlockingTestServer, TestServer, TestServerBuilder};
pub use stamp::Stamp;
pub use tls::{LOOPBACK_NAMES, TlsIdentity};
pub use traffic::RequestInfo;
