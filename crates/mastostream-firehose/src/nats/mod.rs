//! The little of NATS the firehose needs, over a client of its own: publish
//! to JetStream and wait for the acknowledgement, make a stream if it is
//! missing, and a key-value bucket's create, update, put, get, delete and
//! key count. (A general client, with its WebSocket transport, service API
//! and regular-expression validation, was a fifth of the binary.)
//!
//! The layers: [`wire`] is the protocol as bytes (no socket), [`connection`]
//! a socket with request and reply, [`jetstream`] the JetStream API over
//! it, [`kv`] key-value buckets over that.

pub mod connection;
pub mod jetstream;
pub mod kv;
pub mod wire;

pub use connection::Connection;
pub use jetstream::{JetStream, PubAck, StreamConfig};
pub use kv::Bucket;

/// What went wrong talking to NATS.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A URL, subject or header this client cannot use.
    Config(String),
    /// The socket failed.
    Io(String),
    /// No reply in time.
    Timeout(String),
    /// The connection had broken (the reason).
    Closed(String),
    /// The server sent what is not the protocol.
    Protocol(String),
    /// The server refused the connection (`-ERR`, e.g. authorization).
    Refused(String),
    /// Nothing subscribes to the subject: JetStream is off, or the stream
    /// is gone.
    NoResponders(String),
    /// A payload over the server's `max_payload`.
    TooLarge { size: usize, max: usize },
    /// The JetStream API said no.
    Api {
        code: u16,
        err_code: u32,
        description: String,
    },
}

impl Error {
    /// JetStream's "wrong last sequence": a create or update lost the race.
    pub fn is_wrong_last_sequence(&self) -> bool {
        matches!(
            self,
            Error::Api {
                err_code: 10071,
                ..
            }
        )
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Config(text) => write!(f, "{text}"),
            Error::Io(text) => write!(f, "{text}"),
            Error::Timeout(text) => write!(f, "timed out: {text}"),
            Error::Closed(text) => write!(f, "connection lost: {text}"),
            Error::Protocol(text) => write!(f, "not the NATS protocol: {text}"),
            Error::Refused(text) => write!(f, "refused by the NATS server: {text}"),
            Error::NoResponders(text) => write!(f, "{text}"),
            Error::TooLarge { size, max } => write!(
                f,
                "a message of {size} bytes is over the server's max_payload of {max}"
            ),
            Error::Api {
                code,
                err_code,
                description,
            } => write!(f, "JetStream: {description} ({code}, {err_code})"),
        }
    }
}

impl std::error::Error for Error {}
