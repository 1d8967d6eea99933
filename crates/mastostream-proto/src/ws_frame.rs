//! Mastodon's WebSocket text frames, decoded: events tagged with their stream,
//! and error frames.
//!
//! The server sends `{"stream":["hashtag","rust"],"event":"update","payload":"<JSON as a string>"}`:
//! the payload is a string holding what SSE would carry as `data:` (entities
//! JSON-encoded a second time, ids bare). Errors come without a stream:
//! `{"error":"Unknown stream type","status":400}`.

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;
use serde_json::value::RawValue;

use super::event::Event;
use crate::Error;
use crate::json_check::skip_space;
use crate::json_string::{StringError, read_string};

/// What one text frame says.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum WsMessage {
    /// An event, with the `stream` array it came for (`["hashtag", "rust"]`).
    Event {
        /// The stream array as the server sent it (list ids as strings),
        /// empty when it sent none; [`read_label`](crate::read_label) reads it.
        stream: Vec<String>,
        /// The event.
        event: Event,
    },
    /// An error frame (a refused subscription, say).
    Error {
        /// The server's text.
        error: String,
        /// The HTTP-like status, when given.
        status: Option<u16>,
    },
}

/// A text frame taken apart, its event's data not parsed yet: what a
/// multiplexer needs to route it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WsEnvelope {
    /// An event for a stream.
    Event {
        /// The stream array as the server sent it (list ids as strings),
        /// empty when it sent none; [`read_label`](crate::read_label) reads it.
        stream: Vec<String>,
        /// The event name.
        name: String,
        /// The data (the `payload` string), if any.
        data: Option<String>,
    },
    /// An error frame.
    Error {
        /// The server's text.
        error: String,
        /// The HTTP-like status, when given.
        status: Option<u16>,
    },
}

/// Decodes one text frame. A frame that is not one of Mastodon's shapes is
/// an [`Error::MalformedEvent`] (the connection goes on).
pub fn decode_ws_frame(text: &str) -> Result<WsMessage, Error> {
    Ok(match decode_ws_envelope(text)? {
        WsEnvelope::Event { stream, name, data } => WsMessage::Event {
            stream,
            event: Event::parse_owned(&name, data)?,
        },
        WsEnvelope::Error { error, status } => WsMessage::Error { error, status },
    })
}

/// Takes a text frame apart without parsing its event's data; see
/// [`decode_ws_frame`] for the whole decode.
pub fn decode_ws_envelope(text: &str) -> Result<WsEnvelope, Error> {
    let frame = read_frame(text).map_err(|e| Error::malformed("websocket frame", e, text))?;
    if let Some(error) = frame.error {
        let error = match error {
            Value::String(text) => text,
            other => other.to_string(),
        };
        let status = frame.status.and_then(|s| match s {
            Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
            Value::String(text) => text.parse().ok(),
            _ => None,
        });
        return Ok(WsEnvelope::Error { error, status });
    }
    // Pleroma and Akkoma send some events (`delete`, `pleroma:respond`)
    // with no `stream` (see `crate::label`): an empty array then.
    let (Some(name), stream) = (frame.event, frame.stream.unwrap_or_default()) else {
        return Err(Error::malformed(
            "websocket frame",
            "neither an event nor an error",
            text,
        ));
    };
    // An array as Mastodon sends it, or a bare string (`"user"`) as the
    // one element of one: the event is not lost over its label. Anything
    // else is no label: the frame is malformed (and every subscription
    // told it was skipped).
    let parts = match stream {
        Value::Array(parts) => parts,
        Value::Null => Vec::new(),
        Value::String(label) => vec![Value::String(label)],
        _ => {
            return Err(Error::malformed(
                "websocket frame",
                "its stream is neither an array nor a string",
                text,
            ));
        }
    };
    let stream = parts
        .into_iter()
        .map(|part| match part {
            Value::String(text) => text,
            other => other.to_string(),
        })
        .collect();
    Ok(WsEnvelope::Event {
        stream,
        name,
        data: frame.payload,
    })
}

/// The members of a frame that mean something; others are skipped.
#[derive(Default)]
struct Frame {
    stream: Option<Value>,
    event: Option<String>,
    /// The data: the `payload` string unescaped, or the JSON text of a
    /// payload that is not a string (some servers send the object itself).
    payload: Option<String>,
    error: Option<Value>,
    status: Option<Value>,
}

/// Why a frame could not be read.
#[derive(Debug)]
enum FrameError {
    Json(serde_json::Error),
    String(StringError),
    Expected(&'static str, usize),
    Duplicate(String),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Json(e) => e.fmt(f),
            FrameError::String(e) => e.fmt(f),
            FrameError::Expected(what, at) => write!(f, "expected {what} at byte {at}"),
            FrameError::Duplicate(key) => write!(f, "duplicate field `{key}`"),
        }
    }
}

/// Reads a frame's top-level object member by member. The `payload` string
/// goes through [`read_string`]; every other value through serde_json.
/// A frame that is not an object, has trailing text or repeats a member is
/// refused. A payload that is not a string is kept as the JSON text it is,
/// checked but not interpreted: a number beyond `f64` (`1e400`) or an
/// object key with a lone surrogate escape stays text for the consumer,
/// where a whole-frame serde reading refused the frame. (That reading also
/// took a frame written as an array, `[stream, event, payload]`; no server
/// sends one, and it is refused.)
fn read_frame(text: &str) -> Result<Frame, FrameError> {
    let bytes = text.as_bytes();
    let skip_space = |at: usize| skip_space(bytes, at);
    let expect = |at: usize, byte: u8, what: &'static str| {
        if bytes.get(at) == Some(&byte) {
            Ok(at + 1)
        } else {
            Err(FrameError::Expected(what, at))
        }
    };
    let mut frame = Frame::default();
    let mut seen = [false; 5];
    let mut at = expect(skip_space(0), b'{', "an object")?;
    at = skip_space(at);
    if bytes.get(at) == Some(&b'}') {
        at += 1;
    } else {
        loop {
            if bytes.get(at) != Some(&b'"') {
                return Err(FrameError::Expected("a member name", at));
            }
            let (key, after_key) = read_string(text, at).map_err(FrameError::String)?;
            at = skip_space(expect(skip_space(after_key), b':', "`:`")?);
            let slot = ["stream", "event", "payload", "error", "status"]
                .iter()
                .position(|name| *name == key);
            if let Some(slot) = slot
                && std::mem::replace(&mut seen[slot], true)
            {
                return Err(FrameError::Duplicate(key.into_owned()));
            }
            at = match slot {
                Some(0) => read_value(text, at, &mut frame.stream)?,
                Some(1) => read_value(text, at, &mut frame.event)?,
                Some(2) if bytes.get(at) == Some(&b'"') => {
                    let (data, end) = read_string(text, at).map_err(FrameError::String)?;
                    frame.payload = Some(data.into_owned());
                    end
                }
                Some(2) => {
                    let mut raw: Option<&RawValue> = None;
                    let end = read_value(text, at, &mut raw)?;
                    frame.payload = raw.map(|raw| raw.get().to_owned());
                    end
                }
                Some(3) => read_value(text, at, &mut frame.error)?,
                Some(4) => read_value(text, at, &mut frame.status)?,
                _ => read_value(text, at, &mut None::<IgnoredAny>)?,
            };
            at = skip_space(at);
            match bytes.get(at) {
                Some(b',') => at = skip_space(at + 1),
                Some(b'}') => {
                    at += 1;
                    break;
                }
                _ => return Err(FrameError::Expected("`,` or `}`", at)),
            }
        }
    }
    if skip_space(at) != bytes.len() {
        return Err(FrameError::Expected("the end of the frame", skip_space(at)));
    }
    Ok(frame)
}

/// Reads one JSON value starting at `at` into `slot` (`null` leaves it
/// `None`); returns the index after it.
fn read_value<'a, T: Deserialize<'a>>(
    text: &'a str,
    at: usize,
    slot: &mut Option<T>,
) -> Result<usize, FrameError> {
    let mut values = serde_json::Deserializer::from_str(&text[at..]).into_iter::<Option<T>>();
    match values.next() {
        Some(Ok(value)) => {
            *slot = value;
            Ok(at + values.byte_offset())
        }
        Some(Err(e)) => Err(FrameError::Json(e)),
        None => Err(FrameError::Expected("a value", at)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EventKind;
    use proptest::prelude::*;

    const FIXTURE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/mastodon-4.6.5/ws-multiplexed-frames.jsonl"
    );

    #[test]
    fn captured_frames_decode() {
        let text = std::fs::read_to_string(FIXTURE).unwrap();
        let mut events = 0;
        for line in text.lines() {
            match decode_ws_frame(line).unwrap() {
                WsMessage::Event { stream, event } => {
                    events += 1;
                    assert!(!stream.is_empty());
                    if event.name() == "update" {
                        assert!(matches!(event.kind().unwrap(), EventKind::Update(_)));
                    }
                }
                WsMessage::Error { error, status } => {
                    assert_eq!((error.as_str(), status), ("Unknown stream type", Some(400)));
                }
            }
        }
        assert!(events >= 4, "{events}");
    }

    #[test]
    fn ids_list_numbers_and_missing_payloads() {
        let message =
            decode_ws_frame(r#"{"stream":["list",42],"event":"delete","payload":"1039"}"#).unwrap();
        let WsMessage::Event { stream, event } = message else {
            panic!()
        };
        assert_eq!(stream, ["list", "42"]);
        assert_eq!(event.kind().unwrap(), &EventKind::Delete("1039".into()));
        // A label written as a bare string is that label, not a lost event.
        let message =
            decode_ws_frame(r#"{"stream":"user","event":"delete","payload":"5"}"#).unwrap();
        let WsMessage::Event { stream, .. } = message else {
            panic!()
        };
        assert_eq!(stream, ["user"]);
        let message = decode_ws_frame(r#"{"stream":["user"],"event":"filters_changed"}"#).unwrap();
        let WsMessage::Event { event, .. } = message else {
            panic!()
        };
        assert_eq!(event.kind().unwrap(), &EventKind::FiltersChanged);
        let message =
            decode_ws_frame(r#"{"stream":["user"],"event":"x.y","payload":{"a":1}}"#).unwrap();
        let WsMessage::Event { event, .. } = message else {
            panic!()
        };
        assert_eq!(event.payload().to_json_value(), serde_json::json!({"a": 1}));
    }

    #[test]
    fn envelope_unescapes_the_payload_and_keeps_other_shapes_as_text() {
        let data = |frame: &str| match decode_ws_envelope(frame).unwrap() {
            WsEnvelope::Event { data, .. } => data,
            other => panic!("{other:?}"),
        };
        let escaped = r#"{"stream":["user"],"event":"update","payload":"{\"id\":\"1\",\"note\":\"a\\nb \u00e9\"}"}"#;
        assert_eq!(
            data(escaped).as_deref(),
            Some(r#"{"id":"1","note":"a\nb é"}"#)
        );
        let null = r#"{"stream":["user"],"event":"filters_changed","payload":null}"#;
        assert_eq!(data(null), None);
        let number = r#"{"payload":  7 ,"stream":["user"],"event":"delete"}"#;
        assert_eq!(data(number).as_deref(), Some("7"));
        let array = r#"{"stream":["user"],"event":"x","payload":[1,{"a":[]}]}"#;
        assert_eq!(data(array).as_deref(), Some(r#"[1,{"a":[]}]"#));
    }

    #[test]
    fn errors_and_garbage() {
        assert_eq!(
            decode_ws_frame(r#"{"error":"Error unsubscribing from channel"}"#).unwrap(),
            WsMessage::Error {
                error: "Error unsubscribing from channel".into(),
                status: None
            }
        );
        // Pleroma's and Akkoma's deletes carry no stream.
        assert_eq!(
            decode_ws_envelope(r#"{"event":"delete","payload":"9zXq2"}"#).unwrap(),
            WsEnvelope::Event {
                stream: Vec::new(),
                name: "delete".into(),
                data: Some("9zXq2".into())
            }
        );
        for bad in [
            "not json",
            "[]",
            "{}",
            r#"{"stream":["user"],"event":"update","payload":"{}"}"#,
        ] {
            assert!(decode_ws_frame(bad).unwrap_err().is_malformed(), "{bad}");
        }
    }

    /// What a frame means, read the slow way: the whole frame as a
    /// `serde_json::Value` (which keeps the last of repeated members, so the
    /// generator below repeats none).
    fn reference(text: &str) -> Option<WsEnvelope> {
        let frame: Value = serde_json::from_str(text).ok()?;
        let object = frame.as_object()?;
        let present = |key: &str| object.get(key).filter(|v| !v.is_null());
        let as_text = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_owned);
        let name = match present("event") {
            None => None,
            Some(Value::String(name)) => Some(name.clone()),
            Some(_) => return None,
        };
        if let Some(error) = present("error") {
            let status = present("status").and_then(|s| match s {
                Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
                Value::String(text) => text.parse().ok(),
                _ => None,
            });
            return Some(WsEnvelope::Error {
                error: as_text(error),
                status,
            });
        }
        // An error frame is one whatever its `stream`; an event's must be
        // an array or a string.
        let stream: Vec<String> = match present("stream") {
            None => Vec::new(),
            Some(Value::Array(parts)) => parts.iter().map(as_text).collect(),
            Some(Value::String(label)) => vec![label.clone()],
            Some(_) => return None,
        };
        Some(WsEnvelope::Event {
            stream,
            name: name?,
            data: present("payload").map(as_text),
        })
    }

    /// A member's value: compact JSON, as servers write it.
    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("null".to_owned()),
            any::<i64>().prop_map(|n| n.to_string()),
            "\\PC{0,12}".prop_map(|s| Value::String(s).to_string()),
            prop::collection::vec("[a-z0-9]{0,6}", 0..3)
                .prop_map(|parts| Value::from(parts).to_string()),
            Just(r#"{"a":[1,{"b":"c\\"d"}],"e":true}"#.to_owned()),
        ]
    }

    fn member() -> impl Strategy<Value = (String, String)> {
        let payload = prop_oneof![
            value(),
            // An entity encoded a second time, with escapes of every kind.
            "[a-z \"\\\\/\n\t\u{1}é😀]{0,40}".prop_map(|s| {
                let inner = serde_json::json!({"id": "1", "content": s, "n": [1, 2]}).to_string();
                Value::String(inner).to_string()
            }),
        ];
        prop_oneof![
            value().prop_map(|v| ("stream".to_owned(), v)),
            value().prop_map(|v| ("event".to_owned(), v)),
            payload.prop_map(|v| ("payload".to_owned(), v)),
            value().prop_map(|v| ("error".to_owned(), v)),
            value().prop_map(|v| ("status".to_owned(), v)),
            value().prop_map(|v| ("other".to_owned(), v)),
        ]
    }

    proptest::proptest! {
        /// Frames of any members in any order, with any spacing, cut or not:
        /// the envelope reader and the slow reading agree on every one.
        #[test]
        fn envelope_agrees_with_a_reading_of_the_whole_value(
            members in prop::collection::vec(member(), 0..7),
            spaces in prop::collection::vec(prop::sample::select(vec!["", " ", "\n", "\t ", "\r\n"]), 8),
            cut in prop::option::of(0usize..400),
            tail in prop::sample::select(vec!["", "", "x", ",", "}", "{}"]),
        ) {
            let mut seen = std::collections::HashSet::new();
            let members: Vec<_> = members.into_iter().filter(|(k, _)| seen.insert(k.clone())).collect();
            let space = |i: usize| spaces[i % spaces.len()];
            let body: Vec<String> = members
                .iter()
                .enumerate()
                .map(|(i, (k, v))| format!("{}\"{k}\"{}:{}{v}{}", space(i), space(i + 1), space(i + 2), space(i + 3)))
                .collect();
            let mut text = format!("{}{{{}}}{}{tail}", space(4), body.join(","), space(5));
            if let Some(cut) = cut.filter(|&c| c < text.len() && text.is_char_boundary(c)) {
                text.truncate(cut);
            }
            let ours = decode_ws_envelope(&text);
            match reference(&text) {
                Some(expected) => prop_assert_eq!(ours.unwrap(), expected),
                None => prop_assert!(ours.unwrap_err().is_malformed()),
            }
        }
    }

    #[test]
    fn payloads_are_kept_as_text_and_arrays_are_not_frames() {
        let data = |frame: &str| match decode_ws_envelope(frame).unwrap() {
            WsEnvelope::Event { data, .. } => data,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            data(r#"{"event":"x","payload":1e400}"#).as_deref(),
            Some("1e400")
        );
        assert_eq!(
            data(r#"{"event":"x","payload":{"\udc00":1}}"#).as_deref(),
            Some(r#"{"\udc00":1}"#)
        );
        assert!(
            decode_ws_envelope(r#"[null,"delete","9"]"#)
                .unwrap_err()
                .is_malformed()
        );
    }

    #[test]
    fn repeated_members_are_refused() {
        let text = r#"{"event":"update","payload":"1","event":"delete"}"#;
        let error = decode_ws_envelope(text).unwrap_err();
        assert!(
            error.to_string().contains("duplicate field `event`"),
            "{error}"
        );
    }
}
