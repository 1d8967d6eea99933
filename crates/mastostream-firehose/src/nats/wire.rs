//! The NATS client protocol as bytes, without a socket: what the server
//! sends, decoded from whatever pieces the network delivers, and what the
//! client sends, encoded. Facts from the protocol's description
//! (docs.nats.io, "Client Protocol"): every operation is a line ending in
//! CRLF; `MSG subject sid [reply] size` and `HMSG subject sid [reply]
//! header-size total-size` are followed by that many bytes and a CRLF;
//! headers are `NATS/1.0[ status [description]]` and `Name: value` lines
//! ending in an empty line.

use std::fmt::Write as _;

/// The longest control line accepted (`INFO` is the longest the server sends).
const MAX_LINE: usize = 64 * 1024;
/// The largest message accepted: far above any server's `max_payload`.
const MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// A message the server delivered on a subscription.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    pub subject: String,
    pub sid: u64,
    pub reply: Option<String>,
    /// The status of a header block's first line (`503` for "no
    /// responders", `404` for a direct get that found nothing), if any.
    pub status: Option<u16>,
    pub headers: Vec<(String, String)>,
    pub payload: Vec<u8>,
}

impl Message {
    /// The first value of header `name` (names compare case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One operation from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerOp {
    /// `INFO {json}`: the JSON text.
    Info(String),
    Msg(Message),
    Ping,
    Pong,
    Ok,
    /// `-ERR 'text'`: the text without its quotes.
    Err(String),
}

/// Bytes that are not the NATS protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError(pub String);

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Decodes server operations from bytes fed in pieces of any size.
#[derive(Debug, Default)]
pub struct Decoder {
    buffer: Vec<u8>,
    /// Where the next operation starts in `buffer`.
    start: usize,
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder::default()
    }

    /// Adds bytes read from the socket.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buffer.len() {
            self.buffer.clear();
            self.start = 0;
        } else if self.start > 64 * 1024 {
            self.buffer.drain(..self.start);
            self.start = 0;
        }
        self.buffer.extend_from_slice(bytes);
    }

    /// The next whole operation, `None` until one has arrived in full, or
    /// an error for bytes that cannot be the protocol (the connection is
    /// then useless).
    pub fn next_op(&mut self) -> Result<Option<ServerOp>, WireError> {
        let pending = &self.buffer[self.start..];
        let Some(end) = memchr::memmem::find(pending, b"\r\n") else {
            if pending.len() > MAX_LINE {
                return Err(WireError(format!(
                    "a control line longer than {MAX_LINE} bytes"
                )));
            }
            return Ok(None);
        };
        let line = std::str::from_utf8(&pending[..end])
            .map_err(|_| WireError("a control line that is not UTF-8".into()))?;
        let (verb, rest) = line.split_once([' ', '\t']).unwrap_or((line, ""));
        let rest = rest.trim();
        let after_line = end + 2;
        let op = match verb.to_ascii_uppercase().as_str() {
            "PING" => ServerOp::Ping,
            "PONG" => ServerOp::Pong,
            "+OK" => ServerOp::Ok,
            "-ERR" => ServerOp::Err(rest.trim_matches('\'').to_owned()),
            "INFO" => ServerOp::Info(rest.to_owned()),
            "MSG" | "HMSG" => {
                let with_headers = verb.eq_ignore_ascii_case("HMSG");
                let Some((message, total)) = parse_msg_line(rest, with_headers)? else {
                    return Err(WireError(format!("a malformed {verb} line: {line:?}")));
                };
                let (header_size, size) = total;
                if pending.len() < after_line + size + 2 {
                    return Ok(None);
                }
                let body = &pending[after_line..after_line + size];
                if &pending[after_line + size..after_line + size + 2] != b"\r\n" {
                    return Err(WireError(format!(
                        "{verb} on {} is not followed by CRLF after {size} bytes",
                        message.subject
                    )));
                }
                let mut message = message;
                if with_headers {
                    decode_headers(&body[..header_size], &mut message)?;
                }
                message.payload = body[header_size..].to_vec();
                self.start += after_line + size + 2;
                return Ok(Some(ServerOp::Msg(message)));
            }
            _ => return Err(WireError(format!("an unknown operation: {line:?}"))),
        };
        self.start += after_line;
        Ok(Some(op))
    }
}

/// `subject sid [reply] [header-size] size` → the message's addressing and
/// (header bytes, all bytes); `None` when the line does not have that shape.
#[allow(clippy::type_complexity)]
fn parse_msg_line(
    rest: &str,
    with_headers: bool,
) -> Result<Option<(Message, (usize, usize))>, WireError> {
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    let sizes = if with_headers { 2 } else { 1 };
    if fields.len() != 2 + sizes && fields.len() != 3 + sizes {
        return Ok(None);
    }
    let Ok(sid) = fields[1].parse::<u64>() else {
        return Ok(None);
    };
    let reply = (fields.len() == 3 + sizes).then(|| fields[2].to_owned());
    let numbers: Vec<usize> = fields[fields.len() - sizes..]
        .iter()
        .map(|n| n.parse::<usize>())
        .collect::<Result<_, _>>()
        .map_err(|_| WireError(format!("a size that is not a number in {rest:?}")))?;
    let (header_size, size) = if with_headers {
        (numbers[0], numbers[1])
    } else {
        (0, numbers[0])
    };
    if header_size > size || size > MAX_MESSAGE {
        return Err(WireError(format!("sizes out of range in {rest:?}")));
    }
    let message = Message {
        subject: fields[0].to_owned(),
        sid,
        reply,
        ..Message::default()
    };
    Ok(Some((message, (header_size, size))))
}

fn decode_headers(block: &[u8], message: &mut Message) -> Result<(), WireError> {
    let text = std::str::from_utf8(block)
        .map_err(|_| WireError(format!("headers on {} are not UTF-8", message.subject)))?;
    let mut lines = text.split("\r\n");
    let first = lines.next().unwrap_or_default();
    let Some(status) = first.strip_prefix("NATS/1.0") else {
        return Err(WireError(format!(
            "headers on {} do not start with NATS/1.0: {first:?}",
            message.subject
        )));
    };
    message.status = status
        .split_ascii_whitespace()
        .next()
        .and_then(|code| code.parse().ok());
    for line in lines.filter(|l| !l.is_empty()) {
        if let Some((name, value)) = line.split_once(':') {
            message
                .headers
                .push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    Ok(())
}

/// `SUB subject sid`.
pub fn subscribe(out: &mut Vec<u8>, subject: &str, sid: u64) {
    let mut line = String::new();
    let _ = write!(line, "SUB {subject} {sid}\r\n");
    out.extend_from_slice(line.as_bytes());
}

/// `PUB`, or `HPUB` when there are headers, with a reply subject; returns
/// the size the server holds against its `max_payload` (headers included).
pub fn publish(
    out: &mut Vec<u8>,
    subject: &str,
    reply: &str,
    headers: &[(&str, &str)],
    payload: &[u8],
) -> usize {
    let mut size = payload.len();
    let mut line = String::new();
    if headers.is_empty() {
        let _ = write!(line, "PUB {subject} {reply} {}\r\n", payload.len());
        out.extend_from_slice(line.as_bytes());
    } else {
        let mut block = String::from("NATS/1.0\r\n");
        for (name, value) in headers {
            let _ = write!(block, "{name}: {value}\r\n");
        }
        block.push_str("\r\n");
        let _ = write!(
            line,
            "HPUB {subject} {reply} {} {}\r\n",
            block.len(),
            block.len() + payload.len()
        );
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(block.as_bytes());
        size += block.len();
    }
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\r\n");
    size
}

/// Whether `text` may stand in a subject or header without breaking the
/// line it is written in.
pub fn is_token_safe(text: &str) -> bool {
    !text.is_empty()
        && !text
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const STREAM: &[u8] = b"INFO {\"server_id\":\"x\",\"max_payload\":1048576}\r\n\
        PING\r\n+OK\r\n\
        MSG a.b 1 5\r\nhello\r\n\
        MSG _INBOX.x.7 2 r.1 0\r\n\r\n\
        HMSG _INBOX.x.8 2 34 37\r\nNATS/1.0 404 Message Not Found\r\n\r\nabc\r\n\
        HMSG k 3 49 51\r\nNATS/1.0\r\nKV-Operation: DEL\r\nNats-Sequence: 7\r\n\r\nhi\r\n\
        -ERR 'Authorization Violation'\r\nPONG\r\n";

    fn decode_all(pieces: &[&[u8]]) -> Vec<ServerOp> {
        let mut decoder = Decoder::new();
        let mut ops = Vec::new();
        for piece in pieces {
            decoder.feed(piece);
            while let Some(op) = decoder.next_op().unwrap() {
                ops.push(op);
            }
        }
        ops
    }

    #[test]
    fn decodes_every_operation() {
        let ops = decode_all(&[STREAM]);
        assert_eq!(ops.len(), 9, "{ops:?}");
        assert_eq!(
            ops[0],
            ServerOp::Info("{\"server_id\":\"x\",\"max_payload\":1048576}".into())
        );
        assert_eq!(ops[1], ServerOp::Ping);
        assert_eq!(ops[2], ServerOp::Ok);
        let ServerOp::Msg(plain) = &ops[3] else {
            panic!()
        };
        assert_eq!((plain.subject.as_str(), plain.sid), ("a.b", 1));
        assert_eq!(plain.payload, b"hello");
        let ServerOp::Msg(empty) = &ops[4] else {
            panic!()
        };
        assert_eq!(empty.reply.as_deref(), Some("r.1"));
        assert!(empty.payload.is_empty());
        let ServerOp::Msg(missing) = &ops[5] else {
            panic!()
        };
        assert_eq!(missing.status, Some(404));
        assert_eq!(missing.payload, b"abc");
        let ServerOp::Msg(deleted) = &ops[6] else {
            panic!()
        };
        assert_eq!(deleted.status, None);
        assert_eq!(deleted.header("kv-operation"), Some("DEL"));
        assert_eq!(deleted.header("Nats-Sequence"), Some("7"));
        assert_eq!(deleted.payload, b"hi");
        assert_eq!(ops[7], ServerOp::Err("Authorization Violation".into()));
        assert_eq!(ops[8], ServerOp::Pong);
    }

    proptest! {
        /// However the network cuts the bytes, the same operations come out.
        #[test]
        fn pieces_of_any_size_decode_alike(cuts in proptest::collection::vec(0..STREAM.len(), 0..20)) {
            let mut cuts = cuts;
            cuts.sort_unstable();
            let mut pieces = Vec::new();
            let mut at = 0;
            for cut in cuts {
                pieces.push(&STREAM[at..cut]);
                at = cut;
            }
            pieces.push(&STREAM[at..]);
            prop_assert_eq!(decode_all(&pieces), decode_all(&[STREAM]));
        }

        /// Bytes that are not the protocol give an error or wait for more;
        /// they never panic.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut decoder = Decoder::new();
            decoder.feed(&bytes);
            while let Ok(Some(_)) = decoder.next_op() {}
        }
    }

    #[test]
    fn refuses_what_is_not_the_protocol() {
        for bad in [
            &b"HELLO\r\n"[..],
            b"MSG a 1 x\r\n",
            b"MSG a 1 3\r\nabcdef\r\n",
            b"HMSG a 1 9 3\r\nabc\r\n",
            b"HMSG a 1 3 3\r\nabc\r\n",
        ] {
            let mut decoder = Decoder::new();
            decoder.feed(bad);
            assert!(
                decoder.next_op().is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let mut decoder = Decoder::new();
        decoder.feed(&vec![b'x'; MAX_LINE + 1]);
        assert!(decoder.next_op().is_err());
    }

    #[test]
    fn encodes_publishes_with_and_without_headers() {
        let mut out = Vec::new();
        publish(&mut out, "s.1", "_INBOX.a.1", &[], b"{}");
        publish(
            &mut out,
            "s.2",
            "_INBOX.a.2",
            &[("Nats-Msg-Id", "u")],
            b"xy",
        );
        let expected = "PUB s.1 _INBOX.a.1 2\r\n{}\r\n\
            HPUB s.2 _INBOX.a.2 28 30\r\nNATS/1.0\r\nNats-Msg-Id: u\r\n\r\nxy\r\n";
        assert_eq!(String::from_utf8(out).unwrap(), expected);
        // What the client encodes, the decoder (as a server's MSG) reads back.
        let mut decoder = Decoder::new();
        decoder.feed(b"HMSG s.2 9 28 30\r\nNATS/1.0\r\nNats-Msg-Id: u\r\n\r\nxy\r\n");
        let Some(ServerOp::Msg(m)) = decoder.next_op().unwrap() else {
            panic!()
        };
        assert_eq!(
            (m.header("Nats-Msg-Id"), m.payload.as_slice()),
            (Some("u"), &b"xy"[..])
        );
    }
}
