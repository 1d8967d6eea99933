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
        /// The stream array as the server sent it (list ids as strings).
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

#[derive(Deserialize)]
struct Frame<'a> {
    #[serde(default)]
    stream: Option<Vec<Value>>,
    #[serde(default)]
    event: Option<String>,
    #[serde(default, borrow)]
    payload: Option<&'a RawValue>,
    #[serde(default)]
    error: Option<Value>,
    #[serde(default)]
    status: Option<Value>,
}

/// Decodes one text frame. A frame that is not one of Mastodon's shapes is
/// an [`Error::MalformedEvent`] (the connection goes on).
pub fn decode_ws_frame(text: &str) -> Result<WsMessage, Error> {
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
        return Ok(WsMessage::Error { error, status });
    }
    let (Some(name), Some(stream)) = (frame.event, frame.stream) else {
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
        None => None,
        Some(raw) if raw.get() == "null" => None,
        Some(raw) if raw.get().starts_with('"') => Some(
            serde_json::from_str::<String>(raw.get())
                .map_err(|e| Error::malformed(&name, e, raw.get()))?,
        ),
        Some(raw) => Some(raw.get().to_owned()),
    };
    let event = Event::parse_owned(&name, data)?;
    Ok(WsMessage::Event { stream, event })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::EventKind;

    const FIXTURE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/fixtures/mastodon-4.6.5/ws-multiplexed-frames.jsonl"
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
                        assert!(matches!(event.kind(), EventKind::Update(_)));
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
        assert_eq!(event.kind(), &EventKind::Delete("1039".into()));
        let message = decode_ws_frame(r#"{"stream":["user"],"event":"filters_changed"}"#).unwrap();
        let WsMessage::Event { event, .. } = message else {
            panic!()
        };
        assert_eq!(event.kind(), &EventKind::FiltersChanged);
        let message =
            decode_ws_frame(r#"{"stream":["user"],"event":"x.y","payload":{"a":1}}"#).unwrap();
        let WsMessage::Event { event, .. } = message else {
            panic!()
        };
        assert_eq!(event.payload().to_json_value(), serde_json::json!({"a": 1}));
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
