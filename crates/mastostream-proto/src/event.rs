//! Streaming events: the name the server gave, the raw payload, and its typed meaning.

use std::borrow::Cow;
use std::io;
use std::sync::OnceLock;

use serde::Deserialize;
use serde::de::DeserializeOwned;

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
            && (!validate || crate::json_check::is_json(trimmed))
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
            Payload::Json(json) if memchr::memchr2(b'\n', b'\r', json.as_bytes()).is_none() => {
                out.write_all(json.as_bytes())
            }
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
        Event::with_kind(EventKind::Gap(self), Payload::Json(payload))
    }
}

/// One event from a stream: its name, its raw [`payload`](Event::payload)
/// and its typed [`kind`](Event::kind).
///
/// The typed form is built from the payload when it is first asked for and
/// kept; an event made by [`parse`](Event::parse) has it already, one made
/// by [`on_demand`](Event::on_demand) (what a client built with
/// `parse_on_demand` hands out) only once [`kind`](Event::kind) is called.
/// A consumer that reads only the payload, or a few fields of it through
/// [`deserialize`](Event::deserialize), never pays for the rest.
#[derive(Debug, Clone)]
pub struct Event {
    name: Cow<'static, str>,
    payload: Payload,
    typed: OnceLock<Result<EventKind, Error>>,
    caught_up: bool,
}

/// Events are equal when their names, payloads and origins are, and their
/// typed forms when both have been built (one not built yet follows from
/// the name and payload, so comparing never builds an entity).
impl PartialEq for Event {
    fn eq(&self, other: &Event) -> bool {
        self.name == other.name
            && self.payload == other.payload
            && self.caught_up == other.caught_up
            && match (self.typed.get(), other.typed.get()) {
                (Some(Ok(a)), Some(Ok(b))) => a == b,
                (Some(Err(a)), Some(Err(b))) => a.to_string() == b.to_string(),
                (Some(_), Some(_)) => false,
                _ => true,
            }
    }
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

/// Names whose typed form is an entity: the costly ones, built on demand.
fn is_entity_event(name: &str) -> bool {
    matches!(
        name,
        "update"
            | "status.update"
            | "notification"
            | "conversation"
            | "announcement"
            | "announcement.reaction"
    )
}

/// The name, without an allocation for the known ones.
fn event_name(name: &str) -> Cow<'static, str> {
    match KNOWN_EVENTS.iter().find(|known| **known == name) {
        Some(known) => Cow::Borrowed(known),
        None => Cow::Owned(name.to_owned()),
    }
}

/// The typed form of an event from its name and payload.
fn build_kind(name: &str, payload: &Payload) -> Result<EventKind, Error> {
    Ok(match name {
        "update" => EventKind::Update(entity(name, payload)?),
        "status.update" => EventKind::StatusUpdate(entity(name, payload)?),
        "notification" => EventKind::Notification(entity(name, payload)?),
        "conversation" => EventKind::Conversation(entity(name, payload)?),
        "announcement" => EventKind::Announcement(entity(name, payload)?),
        "announcement.reaction" => {
            EventKind::AnnouncementReaction(*entity::<AnnouncementReaction>(name, payload)?)
        }
        "delete" => EventKind::Delete(bare_id(name, payload)?),
        "announcement.delete" => EventKind::AnnouncementDelete(bare_id(name, payload)?),
        "filters_changed" => EventKind::FiltersChanged,
        "notifications_merged" => EventKind::NotificationsMerged,
        "encrypted_message" => EventKind::EncryptedMessage,
        other => EventKind::Unknown(other.to_owned()),
    })
}

impl Event {
    /// Interprets one event from its name and data (the SSE `data:` text, or the
    /// WebSocket frame's `payload` string; `None` when it had none), building
    /// its typed form at once.
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
        let payload = Payload::classify(data, !is_entity_event(name));
        let kind = build_kind(name, &payload)?;
        Ok(Event::with_kind(kind, payload))
    }

    /// Takes one event as it arrives and checks it cheaply: the payload must
    /// be valid JSON where JSON is due (an entity event's, or text that
    /// opens like an object or array), and an id where an id is due; what
    /// fails that is an [`Error::MalformedEvent`] now. The entity itself is
    /// built when [`kind`](Self::kind) is first called, and a payload that
    /// is valid JSON but not the entity (a required field missing) is an
    /// error there.
    pub fn on_demand(name: &str, data: Option<String>) -> Result<Event, Error> {
        let payload = Payload::classify(data, true);
        let event = Event {
            name: event_name(name),
            payload,
            typed: OnceLock::new(),
            caught_up: false,
        };
        if is_entity_event(name) {
            json_text(name, &event.payload)?;
        } else {
            // Everything else is cheap: built (and checked) now.
            let kind = build_kind(name, &event.payload)?;
            let _ = event.typed.set(Ok(kind));
        }
        Ok(event)
    }

    /// Builds an event from parts already checked elsewhere.
    pub fn from_parts(kind: EventKind, payload: Payload) -> Event {
        Event::with_kind(kind, payload)
    }

    fn with_kind(kind: EventKind, payload: Payload) -> Event {
        let name = match &kind {
            EventKind::Unknown(name) => Cow::Owned(name.clone()),
            known => Cow::Borrowed(kind_name(known)),
        };
        let typed = OnceLock::new();
        let _ = typed.set(Ok(kind));
        Event {
            name,
            payload,
            typed,
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
        &self.name
    }

    /// The typed meaning, built from the payload the first time it is
    /// asked for. An error when the payload is not what the event's name
    /// calls for (only possible for an event taken [`on_demand`](Self::on_demand)).
    pub fn kind(&self) -> Result<&EventKind, Error> {
        self.typed
            .get_or_init(|| build_kind(&self.name, &self.payload))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Whether the typed form has been built (or was given).
    pub fn is_typed(&self) -> bool {
        self.typed.get().is_some()
    }

    /// The raw payload as sent.
    pub fn payload(&self) -> &Payload {
        &self.payload
    }

    /// Reads the JSON payload into any type, borrowing from the payload
    /// where the type does (`&'a str`, `Cow<'a, str>` with
    /// `#[serde(borrow)]`): a struct of the few fields a consumer reads
    /// costs a fraction of the whole entity. Independent of
    /// [`kind`](Self::kind); an error names the event and the payload.
    pub fn deserialize<'a, T: Deserialize<'a>>(&'a self) -> Result<T, Error> {
        from_json(&self.name, &self.payload)
    }

    /// Splits the event into its typed meaning (built now if it was not)
    /// and its raw payload.
    pub fn into_parts(mut self) -> (Result<EventKind, Error>, Payload) {
        let kind = match self.typed.take() {
            Some(kind) => kind,
            None => build_kind(&self.name, &self.payload),
        };
        (kind, self.payload)
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

/// The name of a kind the library knows.
fn kind_name(kind: &EventKind) -> &'static str {
    match kind {
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
        EventKind::Unknown(_) => "unknown",
        EventKind::Gap(_) => "mastostream.gap",
    }
}

/// The JSON text of a payload that must be JSON; what is not, an error
/// naming the event.
fn json_text<'a>(name: &str, payload: &'a Payload) -> Result<&'a str, Error> {
    match payload {
        Payload::Json(json) => Ok(json),
        Payload::Text(text) => Err(Error::malformed(name, "payload is not a JSON object", text)),
        Payload::None => Err(Error::malformed(name, "payload is missing", "")),
    }
}

/// Any type from a payload that must be JSON, borrowing where it does.
fn from_json<'a, T: Deserialize<'a>>(name: &str, payload: &'a Payload) -> Result<T, Error> {
    let json = json_text(name, payload)?;
    serde_json::from_str(json).map_err(|e| Error::malformed(name, e, json))
}

fn entity<T: DeserializeOwned>(name: &str, payload: &Payload) -> Result<Box<T>, Error> {
    from_json(name, payload)
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
        let EventKind::Update(status) = event.kind().unwrap() else {
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
            event.kind().unwrap(),
            &EventKind::Delete("103270115826048975".into())
        );
        assert_eq!(
            event.payload().to_json_value(),
            serde_json::json!("103270115826048975")
        );
        let event = Event::parse("announcement.delete", Some("8")).unwrap();
        assert_eq!(
            event.kind().unwrap(),
            &EventKind::AnnouncementDelete("8".into())
        );
        let event = Event::parse("delete", Some("\"42\"")).unwrap();
        assert_eq!(event.kind().unwrap(), &EventKind::Delete("42".into()));
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
        assert_eq!(merged.kind().unwrap(), &EventKind::NotificationsMerged);
        assert_eq!(merged.payload().to_json_value(), serde_json::json!("1"));
        let filters = Event::parse("filters_changed", Some("undefined")).unwrap();
        assert_eq!(filters.kind().unwrap(), &EventKind::FiltersChanged);
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

    #[test]
    fn on_demand_builds_the_entity_when_asked_and_keeps_it() {
        let json = fixture("status.json");
        let event = Event::on_demand("update", Some(json.clone())).unwrap();
        assert!(!event.is_typed());
        // Comparing builds nothing.
        assert_eq!(
            event,
            Event::on_demand("update", Some(json.clone())).unwrap()
        );
        assert!(!event.is_typed());
        assert_eq!(event.name(), "update");
        assert_eq!(event.payload().as_str(), Some(json.as_str()));
        let EventKind::Update(status) = event.kind().unwrap() else {
            panic!("{event:?}")
        };
        assert_eq!(status.id, "103270115826048975");
        assert!(event.is_typed());
        assert_eq!(event, Event::parse("update", Some(&json)).unwrap());
        // Cheap kinds are built (and checked) on arrival.
        let delete = Event::on_demand("delete", Some("7".into())).unwrap();
        assert!(delete.is_typed());
        assert!(Event::on_demand("delete", Some("{\"id\":1}".into())).is_err());
        let unknown = Event::on_demand("x.y", Some("{}".into())).unwrap();
        assert_eq!(unknown.kind().unwrap(), &EventKind::Unknown("x.y".into()));
    }

    #[test]
    fn on_demand_reports_bad_json_on_arrival_and_a_bad_entity_when_asked() {
        for (name, data) in [
            ("update", Some("not json")),
            ("update", Some("{\"id\":\"1\"")),
            ("notification", None),
            ("conversation", Some("[1,")),
        ] {
            let error = Event::on_demand(name, data.map(str::to_owned)).unwrap_err();
            assert!(error.is_malformed(), "{name}: {error}");
        }
        let event = Event::on_demand("update", Some("{\"id\":\"1\"}".into())).unwrap();
        let error = event.kind().unwrap_err();
        let Error::MalformedEvent {
            event: name,
            excerpt,
            ..
        } = &error
        else {
            panic!("{error:?}")
        };
        assert_eq!(
            (name.as_str(), excerpt.as_str()),
            ("update", "{\"id\":\"1\"}")
        );
        assert!(error.to_string().contains("missing field"), "{error}");
        // Asked again: the same error, not a second parse that could differ.
        assert_eq!(event.kind().unwrap_err().to_string(), error.to_string());
        let (kind, payload) = event.into_parts();
        assert!(kind.is_err());
        assert_eq!(payload.as_str(), Some("{\"id\":\"1\"}"));
    }

    #[test]
    fn deserialize_borrows_the_fields_asked_for() {
        #[derive(serde::Deserialize)]
        struct Glance<'a> {
            id: &'a str,
            #[serde(borrow)]
            content: Cow<'a, str>,
            account: Author<'a>,
        }
        #[derive(serde::Deserialize)]
        struct Author<'a> {
            acct: &'a str,
        }
        let json = fixture("status.json");
        let event = Event::on_demand("update", Some(json.clone())).unwrap();
        let glance: Glance<'_> = event.deserialize().unwrap();
        assert_eq!(glance.id, "103270115826048975");
        assert!(!event.is_typed());
        let EventKind::Update(status) = event.kind().unwrap() else {
            panic!("{event:?}")
        };
        assert_eq!(
            (glance.content.as_ref(), glance.account.acct),
            (status.content.as_str(), status.account.acct.as_str())
        );
        // Text without escapes is not copied.
        let plain = Event::on_demand(
            "update",
            Some(r#"{"id":"1","content":"<p>hi</p>","account":{"acct":"a"}}"#.into()),
        )
        .unwrap();
        let glance: Glance<'_> = plain.deserialize().unwrap();
        assert!(matches!(glance.content, Cow::Borrowed("<p>hi</p>")));
        let error = Event::parse("delete", Some("5"))
            .unwrap()
            .deserialize::<Glance<'_>>()
            .map(|_| ())
            .unwrap_err();
        assert!(error.to_string().contains("delete"), "{error}");
    }
}
