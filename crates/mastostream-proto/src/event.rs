//! Streaming events: the name the server gave, the raw payload, and its typed meaning.

use std::io;

use serde::de::{DeserializeOwned, IgnoredAny};

use super::entities::{Announcement, AnnouncementReaction, Conversation, Notification, Status};
use crate::Error;

/// The payload of an event, exactly as the server sent it.
///
/// Nothing the server sent is lost: whatever the typed view makes of an event,
/// its payload text stays reachable here.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Payload {
    /// No data, empty data, or the `undefined` older servers wrote for `filters_changed`.
    None,
    /// Bare text that is not a JSON object or array: an id, or `1`.
    Text(String),
    /// A JSON object or array, as sent (checked to be valid JSON).
    Json(String),
}

impl Payload {
    /// Classifies raw event data. `None` data means the event had no payload at all.
    pub fn from_data(data: Option<&str>) -> Payload {
        Self::classify(data.map(str::to_owned), true)
    }

    /// Like [`from_data`](Self::from_data); with `validate` false, text that
    /// looks like a JSON object or array is taken as JSON unchecked, for a
    /// caller that parses it next anyway (one parse per event, not two).
    fn classify(data: Option<String>, validate: bool) -> Payload {
        let Some(data) = data else {
            return Payload::None;
        };
        let trimmed = data.trim();
        if trimmed.is_empty() || trimmed == "undefined" {
            return Payload::None;
        }
        if (trimmed.starts_with('{') || trimmed.starts_with('['))
            && (!validate || serde_json::from_str::<IgnoredAny>(trimmed).is_ok())
        {
            return Payload::Json(data);
        }
        Payload::Text(data)
    }

    /// The raw text, if there was any.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Payload::None => None,
            Payload::Text(text) | Payload::Json(text) => Some(text),
        }
    }

    /// The payload as a JSON value: objects and arrays as sent, bare text as a
    /// string, no payload as `null`.
    pub fn to_json_value(&self) -> serde_json::Value {
        match self {
            Payload::None => serde_json::Value::Null,
            Payload::Text(text) => serde_json::Value::String(text.clone()),
            Payload::Json(json) => serde_json::from_str(json).unwrap_or(serde_json::Value::Null),
        }
    }

    /// Writes [`to_json_value`](Self::to_json_value)'s JSON on one line, copying
    /// a single-line JSON payload through without re-encoding it.
    pub fn write_json<W: io::Write>(&self, out: &mut W) -> io::Result<()> {
        match self {
            Payload::None => out.write_all(b"null"),
            Payload::Text(text) => serde_json::to_writer(out, text).map_err(io::Error::from),
            Payload::Json(json) if !json.contains(['\n', '\r']) => out.write_all(json.as_bytes()),
            Payload::Json(_) => {
                serde_json::to_writer(out, &self.to_json_value()).map_err(io::Error::from)
            }
        }
    }
}

/// What an event means, by its name.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum EventKind {
    /// `update`: a new status in the stream.
    Update(Box<Status>),
    /// `delete`: a status was deleted; its id.
    Delete(String),
    /// `notification`: a new notification.
    Notification(Box<Notification>),
    /// `filters_changed`: the user's filters changed (dropped by Mastodon 4.3+ servers).
    FiltersChanged,
    /// `conversation`: a direct conversation was updated.
    Conversation(Box<Conversation>),
    /// `announcement`: an announcement was published or changed.
    Announcement(Box<Announcement>),
    /// `announcement.reaction`: a reaction count on an announcement changed.
    AnnouncementReaction(AnnouncementReaction),
    /// `announcement.delete`: an announcement was removed; its id.
    AnnouncementDelete(String),
    /// `status.update`: a status was edited; its new version.
    StatusUpdate(Box<Status>),
    /// `encrypted_message`: an end-to-end encrypted message (removed in Mastodon 4.3).
    EncryptedMessage,
    /// `notifications_merged`: grouped notifications were merged; refetch them.
    NotificationsMerged,
    /// An event this version of the library does not know. Its payload is on the [`Event`].
    Unknown(String),
    /// Not from the server: after an outage, what catch-up could not give
    /// back (deletes, edits, announcements for certain; everything, if it was
    /// cut short).
    Gap(Gap),
}

/// A stretch of time whose events may be missing, reported after an outage
/// when catch-up is on. Its name is `mastostream.gap`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Gap {
    /// The stream it concerns.
    pub stream: super::Channel,
    /// When the connection broke.
    pub since: std::time::SystemTime,
    /// When catch-up finished.
    pub until: std::time::SystemTime,
    /// Whether every status, notification or conversation of the outage was
    /// fetched back. Deletes, edits and announcements cannot be, either way.
    pub complete: bool,
}

impl Gap {
    /// A gap on `stream` from `since` to `until`.
    pub fn new(
        stream: super::Channel,
        since: std::time::SystemTime,
        until: std::time::SystemTime,
        complete: bool,
    ) -> Gap {
        Gap {
            stream,
            since,
            until,
            complete,
        }
    }

    /// The event carrying this gap; its payload is
    /// `{"since": ms, "until": ms, "complete": bool}` (milliseconds since the epoch).
    pub fn into_event(self) -> Event {
        let millis = |t: std::time::SystemTime| {
            t.duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64)
        };
        let payload = serde_json::json!({
            "since": millis(self.since),
            "until": millis(self.until),
            "complete": self.complete,
        })
        .to_string();
        Event {
            kind: EventKind::Gap(self),
            payload: Payload::Json(payload),
            caught_up: false,
        }
    }
}

/// One event from a stream: its typed [`kind`](Event::kind) and its raw [`payload`](Event::payload).
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    kind: EventKind,
    payload: Payload,
    caught_up: bool,
}

/// The names of the events this library knows.
pub const KNOWN_EVENTS: [&str; 11] = [
    "update",
    "delete",
    "notification",
    "filters_changed",
    "conversation",
    "announcement",
    "announcement.reaction",
    "announcement.delete",
    "status.update",
    "encrypted_message",
    "notifications_merged",
];

impl Event {
    /// Interprets one event from its name and data (the SSE `data:` text, or the
    /// WebSocket frame's `payload` string; `None` when it had none).
    ///
    /// A known entity event whose data is not JSON, or lacks a required field,
    /// is an [`Error::MalformedEvent`]; unknown events never fail.
    pub fn parse(name: &str, data: Option<&str>) -> Result<Event, Error> {
        Event::parse_owned(name, data.map(str::to_owned))
    }

    /// [`parse`](Self::parse), taking the data by value so it is not copied again.
    pub fn parse_owned(name: &str, data: Option<String>) -> Result<Event, Error> {
        // Entity events are parsed into their types right below, which checks
        // the JSON; everything else is checked here.
        let typed = matches!(
            name,
            "update"
                | "status.update"
                | "notification"
                | "conversation"
                | "announcement"
                | "announcement.reaction"
        );
        let payload = Payload::classify(data, !typed);
        let kind = match name {
            "update" => EventKind::Update(entity(name, &payload)?),
            "status.update" => EventKind::StatusUpdate(entity(name, &payload)?),
            "notification" => EventKind::Notification(entity(name, &payload)?),
            "conversation" => EventKind::Conversation(entity(name, &payload)?),
            "announcement" => EventKind::Announcement(entity(name, &payload)?),
            "announcement.reaction" => {
                EventKind::AnnouncementReaction(*entity::<AnnouncementReaction>(name, &payload)?)
            }
            "delete" => EventKind::Delete(bare_id(name, &payload)?),
            "announcement.delete" => EventKind::AnnouncementDelete(bare_id(name, &payload)?),
            "filters_changed" => EventKind::FiltersChanged,
            "notifications_merged" => EventKind::NotificationsMerged,
            "encrypted_message" => EventKind::EncryptedMessage,
            other => EventKind::Unknown(other.to_owned()),
        };
        Ok(Event {
            kind,
            payload,
            caught_up: false,
        })
    }

    /// Builds an event from parts already checked elsewhere.
    pub fn from_parts(kind: EventKind, payload: Payload) -> Event {
        Event {
            kind,
            payload,
            caught_up: false,
        }
    }

    /// Whether this event was fetched back over REST after an outage rather
    /// than streamed live (see catch-up).
    pub fn is_caught_up(&self) -> bool {
        self.caught_up
    }

    /// Marks the event as fetched back after an outage.
    pub fn mark_caught_up(mut self) -> Event {
        self.caught_up = true;
        self
    }

    /// The event's name as the server sent it (`update`, `status.update`, ...).
    pub fn name(&self) -> &str {
        match &self.kind {
            EventKind::Update(_) => "update",
            EventKind::Delete(_) => "delete",
            EventKind::Notification(_) => "notification",
            EventKind::FiltersChanged => "filters_changed",
            EventKind::Conversation(_) => "conversation",
            EventKind::Announcement(_) => "announcement",
            EventKind::AnnouncementReaction(_) => "announcement.reaction",
            EventKind::AnnouncementDelete(_) => "announcement.delete",
            EventKind::StatusUpdate(_) => "status.update",
            EventKind::EncryptedMessage => "encrypted_message",
            EventKind::NotificationsMerged => "notifications_merged",
            EventKind::Unknown(name) => name,
            EventKind::Gap(_) => "mastostream.gap",
        }
    }

    /// The typed meaning.
    pub fn kind(&self) -> &EventKind {
        &self.kind
    }

    /// The raw payload as sent.
    pub fn payload(&self) -> &Payload {
        &self.payload
    }

    /// Splits the event into its typed meaning and raw payload.
    pub fn into_parts(self) -> (EventKind, Payload) {
        (self.kind, self.payload)
    }

    /// Writes the event as one JSON line's object, `{"event":NAME,"payload":VALUE}`,
    /// without the newline.
    pub fn write_json<W: io::Write>(&self, out: &mut W) -> io::Result<()> {
        out.write_all(b"{\"event\":")?;
        serde_json::to_writer(&mut *out, self.name()).map_err(io::Error::from)?;
        out.write_all(b",\"payload\":")?;
        self.payload.write_json(out)?;
        out.write_all(b"}")
    }
}

fn entity<T: DeserializeOwned>(name: &str, payload: &Payload) -> Result<Box<T>, Error> {
    match payload {
        Payload::Json(json) => {
            serde_json::from_str(json).map_err(|e| Error::malformed(name, e, json))
        }
        Payload::Text(text) => Err(Error::malformed(name, "payload is not a JSON object", text)),
        Payload::None => Err(Error::malformed(name, "payload is missing", "")),
    }
}

fn bare_id(name: &str, payload: &Payload) -> Result<String, Error> {
    match payload {
        Payload::Text(text) => {
            let id = text.trim();
            // Some servers quote the id as a JSON string.
            let id = id
                .strip_prefix('"')
                .and_then(|id| id.strip_suffix('"'))
                .unwrap_or(id);
            if id.is_empty() || id.contains(char::is_whitespace) {
                Err(Error::malformed(name, "payload is not an id", text))
            } else {
                Ok(id.to_owned())
            }
        }
        Payload::Json(json) => Err(Error::malformed(name, "expected a bare id", json)),
        Payload::None => Err(Error::malformed(name, "payload is missing", "")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = format!(
            "{}/../../fixtures/entities/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn update_is_typed_and_keeps_raw_text() {
        let json = fixture("status.json");
        let event = Event::parse("update", Some(&json)).unwrap();
        let EventKind::Update(status) = event.kind() else {
            panic!("{event:?}")
        };
        assert_eq!(status.id, "103270115826048975");
        assert_eq!(event.payload().as_str(), Some(json.as_str()));
        assert_eq!(event.name(), "update");
    }

    #[test]
    fn bare_ids_stay_strings() {
        let event = Event::parse("delete", Some("103270115826048975")).unwrap();
        assert_eq!(
            event.kind(),
            &EventKind::Delete("103270115826048975".into())
        );
        assert_eq!(
            event.payload().to_json_value(),
            serde_json::json!("103270115826048975")
        );
        let event = Event::parse("announcement.delete", Some("8")).unwrap();
        assert_eq!(event.kind(), &EventKind::AnnouncementDelete("8".into()));
        let event = Event::parse("delete", Some("\"42\"")).unwrap();
        assert_eq!(event.kind(), &EventKind::Delete("42".into()));
    }

    #[test]
    fn payload_rules() {
        assert_eq!(Payload::from_data(None), Payload::None);
        assert_eq!(Payload::from_data(Some("")), Payload::None);
        assert_eq!(Payload::from_data(Some("undefined")), Payload::None);
        assert_eq!(Payload::from_data(Some("1")), Payload::Text("1".into()));
        assert_eq!(
            Payload::from_data(Some("[1,2]")),
            Payload::Json("[1,2]".into())
        );
        assert_eq!(
            Payload::from_data(Some("{nope")),
            Payload::Text("{nope".into())
        );
        let merged = Event::parse("notifications_merged", Some("1")).unwrap();
        assert_eq!(merged.kind(), &EventKind::NotificationsMerged);
        assert_eq!(merged.payload().to_json_value(), serde_json::json!("1"));
        let filters = Event::parse("filters_changed", Some("undefined")).unwrap();
        assert_eq!(filters.kind(), &EventKind::FiltersChanged);
        assert_eq!(filters.payload(), &Payload::None);
    }

    #[test]
    fn malformed_entity_events() {
        for (name, data) in [
            ("update", Some("not json")),
            ("update", Some("{\"id\":\"1\"}")),
            ("notification", Some("{\"id\":\"1\",\"type\":\"mention\"")),
            ("conversation", None),
            ("delete", Some("{\"id\":\"1\"}")),
            ("delete", None),
            ("announcement.reaction", Some("{\"name\":\"x\"}")),
        ] {
            let err = Event::parse(name, data).unwrap_err();
            let Error::MalformedEvent { event, .. } = &err else {
                panic!("{err:?}")
            };
            assert_eq!(event, name);
            assert!(err.is_malformed());
        }
    }

    #[test]
    fn unknown_events_keep_name_and_payload() {
        let event = Event::parse("some.future_event", Some("{\"hello\":\"world\"}")).unwrap();
        assert_eq!(event.name(), "some.future_event");
        assert_eq!(
            event.payload().to_json_value(),
            serde_json::json!({"hello": "world"})
        );
        let event = Event::parse("x", Some("{broken")).unwrap();
        assert_eq!(event.payload(), &Payload::Text("{broken".into()));
    }

    #[test]
    fn write_json_line() {
        let mut out = Vec::new();
        Event::parse("delete", Some("7"))
            .unwrap()
            .write_json(&mut out)
            .unwrap();
        assert_eq!(out, br#"{"event":"delete","payload":"7"}"#);
        let mut out = Vec::new();
        Event::parse("x.y", Some("{\n\"a\": 1\n}"))
            .unwrap()
            .write_json(&mut out)
            .unwrap();
        assert_eq!(out, br#"{"event":"x.y","payload":{"a":1}}"#);
    }
}
