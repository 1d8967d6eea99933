//! What a test publishes, and how it is framed on the wire.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use mastostream_proto::Channel;
use serde::Deserialize;
use serde_json::Value;

use crate::stamp::Stamp;

/// One event to deliver, as `POST /api/testkit/publish` takes it.
///
/// ```
/// use mastostream_proto::Channel;
/// use mastostream_testkit::Publish;
///
/// let delete = Publish::new("delete", "103270115826048975").to(Channel::PublicLocal);
/// assert_eq!(delete.data().as_deref(), Some("103270115826048975"));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Publish {
    /// Where to deliver it; `None` fans it out as Mastodon would.
    pub stream: Option<Channel>,
    /// The event name.
    pub event: String,
    /// The payload: an object for entities, a string for bare ids, `null` for none.
    pub payload: Value,
    /// What the server does to its ids and times; see [`Stamp`].
    pub stamp: Stamp,
}

impl Publish {
    /// An event with a payload, fanned out as Mastodon would unless [`to`](Self::to) is called.
    pub fn new(event: impl Into<String>, payload: impl Into<Value>) -> Self {
        Publish {
            stream: None,
            event: event.into(),
            payload: payload.into(),
            stamp: Stamp::Missing,
        }
    }

    /// Delivers to one stream only.
    pub fn to(mut self, stream: Channel) -> Self {
        self.stream = Some(stream);
        self
    }

    /// Sends it as a live server sends a new post: fresh ids and
    /// `created_at` now, `edited_at` now on an edit ([`Stamp::Live`]).
    pub fn live(mut self) -> Self {
        self.stamp = Stamp::Live;
        self
    }

    /// Sends the payload exactly as given, not even a missing id filled in
    /// ([`Stamp::Verbatim`]).
    pub fn verbatim(mut self) -> Self {
        self.stamp = Stamp::Verbatim;
        self
    }

    /// The SSE `data:` text: objects as compact JSON, strings as they are,
    /// `None` for `null`.
    pub fn data(&self) -> Option<String> {
        match &self.payload {
            Value::Null => None,
            Value::String(text) => Some(text.clone()),
            other => Some(other.to_string()),
        }
    }

    /// Parses a control request body: `{"stream": NAME | [NAME, ARG], "event": E,
    /// "payload": V, "stamp": "missing" | "live" | "verbatim"}`.
    pub fn from_json(body: &[u8]) -> Result<Publish, String> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum StreamField {
            Name(String),
            Array(Vec<String>),
        }
        #[derive(Deserialize)]
        struct Body {
            #[serde(default)]
            stream: Option<StreamField>,
            event: String,
            #[serde(default)]
            payload: Value,
            #[serde(default)]
            stamp: Stamp,
        }
        let body: Body = serde_json::from_slice(body).map_err(|e| e.to_string())?;
        let stream = match body.stream {
            None => None,
            Some(StreamField::Name(name)) => {
                Some(Channel::from_name(&name, None).map_err(|e| format!("{name}: {e}"))?)
            }
            Some(StreamField::Array(array)) => {
                Some(Channel::from_ws_stream_array(&array).map_err(|e| format!("{array:?}: {e}"))?)
            }
        };
        if body.event.is_empty() || body.event.contains(['\n', '\r']) {
            return Err("event must be a non-empty single line".into());
        }
        Ok(Publish {
            stream,
            event: body.event,
            payload: body.payload,
            stamp: body.stamp,
        })
    }
}

/// An event framed once, shared by every connection it goes to.
#[derive(Debug)]
pub struct Encoded {
    /// The event name.
    pub event: String,
    /// `event: NAME\n` — Mastodon writes the name and the data in two writes.
    pub sse_event_line: Bytes,
    /// `data: DATA\n\n`.
    pub sse_data: Bytes,
    /// The end of a WebSocket frame after its `stream` array:
    /// `,"event":"NAME","payload":"DATA"}` (the payload always a string).
    pub ws_tail: Bytes,
    /// A glitch-soc local-only post (`"local_only": true`).
    pub local_only: bool,
    /// Whether it was published with a payload (Mastodon 4.3 and later
    /// send nothing without one).
    pub has_payload: bool,
    /// The same update with `"filtered":[]` added, for a Mastodon 4.1
    /// server's logged-in subscribers of public and hashtag streams.
    pub with_filtered: Option<Arc<Encoded>>,
}

impl Encoded {
    /// Frames an event. No data is written as `data: undefined`, as Mastodon
    /// servers before 4.3 did for `filters_changed`; on WebSocket the
    /// frame then has no payload.
    pub fn new(event: &str, data: Option<&str>) -> Encoded {
        let sse_event_line = Bytes::from(format!("event: {event}\n"));
        let mut sse_data = BytesMut::new();
        // A multi-line payload needs one `data:` line per line.
        for line in data.unwrap_or("undefined").split('\n') {
            sse_data.put_slice(b"data: ");
            sse_data.put_slice(line.as_bytes());
            sse_data.put_u8(b'\n');
        }
        sse_data.put_u8(b'\n');
        let mut ws_tail = String::from(",\"event\":");
        ws_tail.push_str(&Value::from(event).to_string());
        if let Some(data) = data {
            ws_tail.push_str(",\"payload\":");
            ws_tail.push_str(&Value::from(data).to_string());
        }
        ws_tail.push('}');
        Encoded {
            event: event.to_owned(),
            sse_event_line,
            sse_data: sse_data.freeze(),
            ws_tail: Bytes::from(ws_tail),
            local_only: false,
            has_payload: data.is_some(),
            with_filtered: None,
        }
    }

    /// What goes to a subscriber of `stream` of a `flavour` server,
    /// `logged_in` or not: this, or its `"filtered":[]` form.
    pub fn for_subscriber(
        &self,
        flavour: crate::Flavour,
        stream: &Channel,
        logged_in: bool,
    ) -> &Encoded {
        match &self.with_filtered {
            Some(filtered) if flavour.adds_filtered(&self.event, stream, logged_in) => filtered,
            _ => self,
        }
    }

    /// The whole WebSocket text frame for a subscriber of `stream`.
    pub fn ws_frame(&self, stream: &Channel) -> String {
        let mut frame = String::with_capacity(32 + self.ws_tail.len());
        frame.push_str("{\"stream\":");
        frame.push_str(&serde_json::to_string(&stream.ws_stream_array()).unwrap_or_default());
        // The tail was built from a String, so it is UTF-8.
        frame.push_str(std::str::from_utf8(&self.ws_tail).unwrap_or_default());
        frame
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_matches_mastodon() {
        let e = Encoded::new("update", Some("{\"id\":\"1\"}"));
        assert_eq!(&e.sse_event_line[..], b"event: update\n");
        assert_eq!(&e.sse_data[..], b"data: {\"id\":\"1\"}\n\n");
        assert_eq!(
            e.ws_frame(&Channel::Hashtag("Rust".into())),
            r#"{"stream":["hashtag","Rust"],"event":"update","payload":"{\"id\":\"1\"}"}"#
        );
        let e = Encoded::new("filters_changed", None);
        assert_eq!(&e.sse_data[..], b"data: undefined\n\n");
        assert_eq!(
            e.ws_frame(&Channel::User),
            r#"{"stream":["user"],"event":"filters_changed"}"#
        );
    }

    #[test]
    fn control_bodies() {
        let p =
            Publish::from_json(br#"{"stream":["hashtag","rust"],"event":"delete","payload":"5"}"#)
                .unwrap();
        assert_eq!(p.stream, Some(Channel::Hashtag("rust".into())));
        assert_eq!(p.data().as_deref(), Some("5"));
        let p = Publish::from_json(br#"{"event":"notifications_merged","payload":1}"#).unwrap();
        assert_eq!((&p.stream, p.data().as_deref()), (&None, Some("1")));
        assert!(Publish::from_json(br#"{"stream":"nope","event":"x"}"#).is_err());
        assert!(Publish::from_json(br#"{"stream":"hashtag","event":"x"}"#).is_err());
        assert!(Publish::from_json(br#"{"event":"a\nb"}"#).is_err());
        let p = Publish::from_json(br#"{"event":"update","stamp":"verbatim"}"#).unwrap();
        assert_eq!(p.stamp, Stamp::Verbatim);
        assert_eq!(
            Publish::from_json(br#"{"event":"x"}"#).unwrap().stamp,
            Stamp::Missing
        );
        assert!(Publish::from_json(br#"{"event":"x","stamp":"now"}"#).is_err());
    }
}
