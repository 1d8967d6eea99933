//! Mastodon's WebSocket text frames, decoded: events tagged with their stream,
//! and error frames.
//!
//! The server sends `{"stream":["hashtag","rust"],"event":"update","payload":"<JSON as a string>"}`:
//! the payload is a string holding what SSE would carry as `data:` (entities
//! JSON-encoded a second time, ids bare). Errors come without a stream:
//! `{"error":"Unknown stream type","status":400}`.

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use super::event::Event;
use crate::Error;

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

/// A frame's `payload`, unescaped in the same pass that reads the frame
/// (Mastodon's case: a string). Anything else is only noted, and read as
/// raw JSON text in a second pass.
#[derive(Default)]
enum PayloadField {
    #[default]
    Missing,
    Text(String),
    Structured,
}

impl<'de> Deserialize<'de> for PayloadField {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = PayloadField;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a payload")
            }
            fn visit_str<E>(self, text: &str) -> Result<PayloadField, E> {
                Ok(PayloadField::Text(text.to_owned()))
            }
            fn visit_string<E>(self, text: String) -> Result<PayloadField, E> {
                Ok(PayloadField::Text(text))
            }
            fn visit_unit<E>(self) -> Result<PayloadField, E> {
                Ok(PayloadField::Missing)
            }
            fn visit_none<E>(self) -> Result<PayloadField, E> {
                Ok(PayloadField::Missing)
            }
            fn visit_bool<E>(self, _: bool) -> Result<PayloadField, E> {
                Ok(PayloadField::Structured)
            }
            fn visit_i64<E>(self, _: i64) -> Result<PayloadField, E> {
                Ok(PayloadField::Structured)
            }
            fn visit_u64<E>(self, _: u64) -> Result<PayloadField, E> {
                Ok(PayloadField::Structured)
            }
            fn visit_f64<E>(self, _: f64) -> Result<PayloadField, E> {
                Ok(PayloadField::Structured)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<PayloadField, A::Error> {
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(PayloadField::Structured)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<PayloadField, A::Error> {
                while map
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(PayloadField::Structured)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// The second pass for a payload that is not a string.
#[derive(Deserialize)]
struct RawPayload<'a> {
    #[serde(borrow)]
    payload: &'a RawValue,
}

#[derive(Deserialize)]
struct Frame {
    #[serde(default)]
    stream: Option<Vec<Value>>,
    #[serde(default)]
    event: Option<String>,
    #[serde(default)]
    payload: PayloadField,
    #[serde(default)]
    error: Option<Value>,
    #[serde(default)]
    status: Option<Value>,
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
    let frame: Frame =
        serde_json::from_str(text).map_err(|e| Error::malformed("websocket frame", e, text))?;
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
    let stream = stream
        .into_iter()
        .map(|part| match part {
            Value::String(text) => text,
            other => other.to_string(),
        })
        .collect();
    // The payload is a JSON string holding the data; some servers send the
    // object itself, which is taken as its JSON text.
    let data = match frame.payload {
        PayloadField::Missing => None,
        PayloadField::Text(text) => Some(text),
        PayloadField::Structured => {
            let raw: RawPayload = serde_json::from_str(text)
                .map_err(|e| Error::malformed("websocket frame", e, text))?;
            Some(raw.payload.get().to_owned())
        }
    };
    Ok(WsEnvelope::Event { stream, name, data })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EventKind;

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
}
