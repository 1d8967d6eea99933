//! From SSE bytes to typed events: [`SseDecoder`] and [`Event::parse`] in one.

use super::event::Event;
use super::sse::{SseDecoder, SseError, SseItem};
use crate::Error;

/// What a stream delivers: events, and the heartbeats that prove it is alive.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum StreamItem {
    /// An event.
    Event(Event),
    /// A comment line: the server's `:)` greeting or its periodic `:thump`.
    Heartbeat,
}

/// Decodes a Mastodon SSE response body into [`StreamItem`]s.
///
/// Feed it bytes as they arrive, then poll until `None`. Errors are per event
/// (malformed, too large): the decoder skips the bad event and goes on.
///
/// ```
/// use mastostream_proto::{EventDecoder, EventKind, StreamItem};
///
/// let mut decoder = EventDecoder::new();
/// decoder.feed(b":)\nevent: delete\n");
/// decoder.feed(b"data: 103270115826048975\n\n");
/// assert_eq!(decoder.poll().unwrap().unwrap(), StreamItem::Heartbeat);
/// let Some(Ok(StreamItem::Event(event))) = decoder.poll() else { panic!() };
/// assert_eq!(event.kind().unwrap(), &EventKind::Delete("103270115826048975".into()));
/// assert!(decoder.poll().is_none());
/// ```
#[derive(Debug, Default)]
pub struct EventDecoder {
    sse: SseDecoder,
}

impl EventDecoder {
    /// A decoder with the default 1 MiB event size limit.
    pub fn new() -> Self {
        Self::default()
    }

    /// A decoder with the given event size limit in bytes.
    pub fn with_max_event_size(limit: usize) -> Self {
        EventDecoder {
            sse: SseDecoder::with_max_event_size(limit),
        }
    }

    /// Feeds the next chunk of the response body.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.sse.feed(bytes);
    }

    /// Takes the next item: an event, a heartbeat, or an error about one event.
    pub fn poll(&mut self) -> Option<Result<StreamItem, Error>> {
        let item = match self.sse.poll_item()? {
            SseItem::Heartbeat => Ok(StreamItem::Heartbeat),
            SseItem::Message(message) => {
                Event::parse_owned(&message.name, Some(message.data)).map(StreamItem::Event)
            }
            SseItem::Error(error) => Err(sse_error(error)),
        };
        Some(item)
    }

    /// Bytes held for an incomplete event; never more than the size limit.
    pub fn buffered_len(&self) -> usize {
        self.sse.buffered_len()
    }
}

/// The library's error for what the SSE decoder rejected.
/// The [`Error`] for an SSE framing error, as the decoders report it.
pub fn sse_error(error: SseError) -> Error {
    match error {
        SseError::InvalidUtf8 { event } => Error::MalformedEvent {
            event,
            reason: "data is not valid UTF-8".into(),
            excerpt: String::new(),
        },
        SseError::TooLarge { limit, event } => Error::EventTooLarge { event, limit },
    }
}
