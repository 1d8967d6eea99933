//! An incremental, bounded Server-Sent Events decoder.
//!
//! [`SseDecoder`] is fed bytes in whatever pieces the network delivers them
//! ([`SseDecoder::feed`]) and hands out complete items ([`SseDecoder::poll_item`]).
//! It owns no socket and never blocks: the transports and the `decode` command
//! drive it, and the tests drive it with plain byte slices.
//!
//! Mastodon writes `event: NAME\n` and `data: PAYLOAD\n\n` in two writes, so a
//! single event routinely spans two feeds; every rule below holds for any
//! chunking of the input.

use std::collections::VecDeque;

/// The default bound on one event's size: 1 MiB.
pub const DEFAULT_MAX_EVENT_SIZE: usize = 1024 * 1024;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// One event as it was framed on the wire, before its payload is interpreted.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SseMessage {
    /// The `event:` field; `message` when the server sent none (per the SSE spec).
    pub name: String,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// What the decoder found in the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SseItem {
    /// A complete event with at least one `data:` line.
    Message(SseMessage),
    /// A comment line (`:)` on connect, `:thump` every heartbeat interval).
    Heartbeat,
    /// Bytes that could not be decoded; they were dropped and decoding goes on.
    Error(SseError),
}

/// Why bytes were dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SseError {
    /// The event's name or data were not valid UTF-8; the event was skipped.
    InvalidUtf8 {
        /// The event name, lossily decoded.
        event: String,
    },
    /// An event (or a line with no end) grew past the limit; its bytes are
    /// dropped up to the next blank line.
    TooLarge {
        /// The configured limit in bytes.
        limit: usize,
        /// The event name, if its `event:` line had been seen.
        event: String,
    },
}

/// The incremental SSE decoder. See the [module docs](self).
///
/// Call [`feed`](Self::feed) with each chunk of bytes as it arrives, then
/// [`poll_item`](Self::poll_item) until it returns `None`.
#[derive(Debug)]
pub struct SseDecoder {
    max_event_size: usize,
    /// How many bytes of the BOM matched at the stream's start; `None` once decided.
    bom_matched: Option<usize>,
    /// The start of a line whose end has not arrived yet.
    partial_line: Vec<u8>,
    /// The previous chunk ended in CR: an LF at the start of the next one
    /// belongs to the same line break.
    after_cr: bool,
    event_name: Vec<u8>,
    data: Vec<u8>,
    data_seen: bool,
    /// Dropping an oversized event until the next blank line.
    discarding: bool,
    /// While discarding: the current line has content, so its end is not a blank line.
    discard_line_has_bytes: bool,
    items: VecDeque<SseItem>,
}

impl Default for SseDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl SseDecoder {
    /// A decoder with the default 1 MiB event size limit.
    pub fn new() -> Self {
        Self::with_max_event_size(DEFAULT_MAX_EVENT_SIZE)
    }

    /// A decoder that drops events (and unterminated lines) larger than `limit` bytes.
    pub fn with_max_event_size(limit: usize) -> Self {
        Self {
            max_event_size: limit.max(1),
            bom_matched: Some(0),
            partial_line: Vec::new(),
            after_cr: false,
            event_name: Vec::new(),
            data: Vec::new(),
            data_seen: false,
            discarding: false,
            discard_line_has_bytes: false,
            items: VecDeque::new(),
        }
    }

    /// The configured event size limit in bytes.
    pub fn max_event_size(&self) -> usize {
        self.max_event_size
    }

    /// Takes the next decoded item, if any.
    pub fn poll_item(&mut self) -> Option<SseItem> {
        self.items.pop_front()
    }

    /// Bytes held for an event or line that is not complete yet.
    pub fn buffered_len(&self) -> usize {
        self.partial_line.len() + self.data.len() + self.event_name.len()
    }

    /// Feeds the next chunk of the response body.
    pub fn feed(&mut self, mut input: &[u8]) {
        if let Some(matched) = self.bom_matched {
            input = self.skip_bom(matched, input);
        }
        while !input.is_empty() {
            if self.after_cr {
                self.after_cr = false;
                if input[0] == b'\n' {
                    input = &input[1..];
                    continue;
                }
            }
            match memchr::memchr2(b'\n', b'\r', input) {
                Some(end) => {
                    self.after_cr = input[end] == b'\r';
                    let (line, rest) = (&input[..end], &input[end + 1..]);
                    input = rest;
                    if self.partial_line.is_empty() {
                        self.end_line(line);
                    } else {
                        let mut joined = std::mem::take(&mut self.partial_line);
                        joined.extend_from_slice(line);
                        self.end_line(&joined);
                        joined.clear();
                        self.partial_line = joined;
                    }
                }
                None => {
                    self.extend_partial_line(input);
                    break;
                }
            }
        }
    }

    /// Strips a UTF-8 BOM at the very start of the stream, even one split across feeds.
    fn skip_bom<'a>(&mut self, mut matched: usize, mut input: &'a [u8]) -> &'a [u8] {
        while matched < BOM.len() {
            match input.first() {
                None => {
                    self.bom_matched = Some(matched);
                    return input;
                }
                Some(&b) if b == BOM[matched] => {
                    matched += 1;
                    input = &input[1..];
                }
                Some(_) => {
                    // Not a BOM after all: the bytes taken so far are content.
                    self.bom_matched = None;
                    self.extend_partial_line(&BOM[..matched]);
                    return input;
                }
            }
        }
        self.bom_matched = None;
        input
    }

    fn extend_partial_line(&mut self, bytes: &[u8]) {
        if self.discarding {
            self.discard_line_has_bytes |= !bytes.is_empty();
            return;
        }
        self.partial_line.extend_from_slice(bytes);
        if self.buffered_len() > self.max_event_size {
            self.start_discarding();
            self.discard_line_has_bytes = true;
        }
    }

    fn start_discarding(&mut self) {
        self.items.push_back(SseItem::Error(SseError::TooLarge {
            limit: self.max_event_size,
            event: String::from_utf8_lossy(&self.event_name).into_owned(),
        }));
        self.discarding = true;
        self.discard_line_has_bytes = false;
        self.partial_line = Vec::new();
        self.data = Vec::new();
        self.event_name.clear();
        self.data_seen = false;
    }

    /// Handles one complete line (without its terminator).
    fn end_line(&mut self, line: &[u8]) {
        if self.discarding {
            let blank = line.is_empty() && !self.discard_line_has_bytes;
            self.discard_line_has_bytes = false;
            if blank {
                self.discarding = false;
            }
            return;
        }
        if line.is_empty() {
            self.dispatch();
            return;
        }
        if line[0] == b':' {
            self.items.push_back(SseItem::Heartbeat);
            return;
        }
        let (field, value) = match memchr::memchr(b':', line) {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"event" => {
                self.event_name.clear();
                self.event_name.extend_from_slice(value);
            }
            b"data" => {
                if self.data_seen {
                    self.data.push(b'\n');
                } else {
                    // Most events have one data line: size the buffer to it,
                    // and hand that very buffer over as the event's data.
                    self.data.reserve_exact(value.len());
                }
                self.data.extend_from_slice(value);
                self.data_seen = true;
            }
            // `id`, `retry` and unknown fields carry nothing Mastodon uses.
            _ => {}
        }
        if self.buffered_len() > self.max_event_size {
            self.start_discarding();
        }
    }

    /// A blank line ends an event; it is delivered only if it had data.
    fn dispatch(&mut self) {
        if self.data_seen {
            let data = std::mem::take(&mut self.data);
            let item = match (
                std::str::from_utf8(&self.event_name),
                String::from_utf8(data),
            ) {
                (Ok(name), Ok(data)) => SseItem::Message(SseMessage {
                    name: if name.is_empty() { "message" } else { name }.to_owned(),
                    data,
                }),
                _ => SseItem::Error(SseError::InvalidUtf8 {
                    event: String::from_utf8_lossy(&self.event_name).into_owned(),
                }),
            };
            self.items.push_back(item);
        }
        self.event_name.clear();
        self.data.clear();
        self.data_seen = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_chunks(chunks: &[&[u8]]) -> Vec<SseItem> {
        let mut decoder = SseDecoder::new();
        let mut out = Vec::new();
        for chunk in chunks {
            decoder.feed(chunk);
            while let Some(item) = decoder.poll_item() {
                out.push(item);
            }
        }
        out
    }

    fn msg(name: &str, data: &str) -> SseItem {
        SseItem::Message(SseMessage {
            name: name.into(),
            data: data.into(),
        })
    }

    #[test]
    fn mastodon_two_write_event() {
        let items = decode_chunks(&[b":)\n", b"event: update\n", b"data: {\"id\":\"1\"}\n\n"]);
        assert_eq!(
            items,
            vec![SseItem::Heartbeat, msg("update", "{\"id\":\"1\"}")]
        );
    }

    #[test]
    fn line_endings_lf_crlf_and_lone_cr() {
        for input in [
            &b"event: a\ndata: x\n\n"[..],
            b"event: a\r\ndata: x\r\n\r\n",
            b"event: a\rdata: x\r\r",
        ] {
            assert_eq!(decode_chunks(&[input]), vec![msg("a", "x")], "{input:?}");
        }
    }

    #[test]
    fn crlf_split_across_feeds_is_one_line_break() {
        let items = decode_chunks(&[b"event: a\r", b"\ndata: x\r", b"\n\r", b"\n"]);
        assert_eq!(items, vec![msg("a", "x")]);
    }

    #[test]
    fn optional_single_space_after_colon() {
        let items = decode_chunks(&[b"event:a\ndata:x\n\nevent:  b\ndata:  y\n\n"]);
        assert_eq!(items, vec![msg("a", "x"), msg(" b", " y")]);
    }

    #[test]
    fn ignores_id_retry_and_unknown_fields() {
        let items = decode_chunks(&[b"id: 7\nretry: 10\nfoo: bar\nnocolon\nevent: a\ndata: x\n\n"]);
        assert_eq!(items, vec![msg("a", "x")]);
    }

    #[test]
    fn no_dispatch_without_data() {
        let items = decode_chunks(&[b"event: a\n\nevent: b\ndata: y\n\n"]);
        assert_eq!(items, vec![msg("b", "y")]);
    }

    #[test]
    fn empty_data_line_still_dispatches() {
        let items = decode_chunks(&[b"event: filters_changed\ndata\n\n"]);
        assert_eq!(items, vec![msg("filters_changed", "")]);
    }

    #[test]
    fn multi_line_data_joined_with_lf() {
        let items = decode_chunks(&[b"data: a\ndata: b\ndata:\n\n"]);
        assert_eq!(items, vec![msg("message", "a\nb\n")]);
    }

    #[test]
    fn comments_are_heartbeats() {
        let items = decode_chunks(&[b":)\n:thump\n\n:anything at all\n"]);
        assert_eq!(
            items,
            vec![SseItem::Heartbeat, SseItem::Heartbeat, SseItem::Heartbeat]
        );
    }

    #[test]
    fn leading_bom_is_stripped_even_when_split() {
        assert_eq!(
            decode_chunks(&[b"\xEF", b"\xBB", b"\xBFdata: x\n\n"]),
            vec![msg("message", "x")]
        );
        // Only at the start of the stream.
        let items = decode_chunks(&[b"data: x\n\n\xEF\xBB\xBFdata: y\n\n"]);
        assert_eq!(items, vec![msg("message", "x")]);
    }

    #[test]
    fn partial_bom_is_content() {
        let items = decode_chunks(&[b"\xEF", b"data: x\n\n"]);
        // "\xEFdata" is an unknown field name: nothing dispatches, and nothing panics.
        assert!(items.is_empty());
        let items = decode_chunks(&[b"\xEF\xBB:)\n"]);
        assert!(
            items.is_empty(),
            "a line starting with bytes is not a comment"
        );
    }

    #[test]
    fn multibyte_utf8_split_across_feeds() {
        let text = "data: café 🦀 漢字\n\n".as_bytes();
        for cut in 0..text.len() {
            let items = decode_chunks(&[&text[..cut], &text[cut..]]);
            assert_eq!(items, vec![msg("message", "café 🦀 漢字")], "cut at {cut}");
        }
    }

    #[test]
    fn invalid_utf8_event_is_reported_and_skipped() {
        let items =
            decode_chunks(&[b"event: update\ndata: \xFF\xFE\n\nevent: delete\ndata: 1\n\n"]);
        assert_eq!(
            items,
            vec![
                SseItem::Error(SseError::InvalidUtf8 {
                    event: "update".into()
                }),
                msg("delete", "1")
            ]
        );
    }

    #[test]
    fn oversized_event_reported_once_and_skipped() {
        let mut decoder = SseDecoder::with_max_event_size(16);
        decoder.feed(b"event: big\ndata: 0123456789\ndata: 0123456789\ndata: more\n\n");
        decoder.feed(b"event: small\ndata: ok\n\n");
        let items: Vec<_> = std::iter::from_fn(|| decoder.poll_item()).collect();
        assert_eq!(
            items,
            vec![
                SseItem::Error(SseError::TooLarge {
                    limit: 16,
                    event: "big".into()
                }),
                msg("small", "ok")
            ]
        );
        assert_eq!(decoder.buffered_len(), 0);
    }

    #[test]
    fn endless_line_is_bounded() {
        let mut decoder = SseDecoder::with_max_event_size(1000);
        let chunk = [b'x'; 256];
        for _ in 0..10_000 {
            decoder.feed(&chunk);
            assert!(decoder.buffered_len() <= 1000);
        }
        let items: Vec<_> = std::iter::from_fn(|| decoder.poll_item()).collect();
        assert_eq!(items.len(), 1, "reported once: {items:?}");
        // The end of the long line is not a blank line; the next blank line is.
        decoder.feed(b"\ndata: lost\n\ndata: kept\n\n");
        let items: Vec<_> = std::iter::from_fn(|| decoder.poll_item()).collect();
        assert_eq!(items, vec![msg("message", "kept")]);
    }

    #[test]
    fn oversized_blank_line_detection_across_feeds() {
        let mut decoder = SseDecoder::with_max_event_size(8);
        decoder.feed(b"data: 0123456789");
        decoder.feed(b"abc\r");
        decoder.feed(b"\n\r\n");
        decoder.feed(b"data: y\n\n");
        let items: Vec<_> = std::iter::from_fn(|| decoder.poll_item()).collect();
        assert_eq!(items.len(), 2);
        assert_eq!(items[1], msg("message", "y"));
    }
}
