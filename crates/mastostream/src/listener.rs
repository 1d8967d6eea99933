//! Listeners: how events reach user code, one method per event or one closure per name.

use std::collections::HashMap;
use std::fmt;

use crate::Error;
use crate::item::Item;
use crate::state::ConnectionState;
use mastostream_proto::entities::{
    Announcement, AnnouncementReaction, Conversation, Notification, Status,
};
use mastostream_proto::{Event, EventKind, Gap, Payload};

/// Receives a stream's events, one method per known event.
///
/// Every method has a no-op default: implement the ones you need. The
/// transports call [`dispatch`] (or [`dispatch_item`]) for each event, which
/// calls [`on_event`](Self::on_event); its default sends the event to the typed
/// method for its name. Override `on_event` to see every event first.
///
/// ```
/// use mastostream::listener::{dispatch, StreamListener};
/// use mastostream::{entities::Status, Event};
///
/// #[derive(Default)]
/// struct Printer(Vec<String>);
///
/// impl StreamListener for Printer {
///     fn on_delete(&mut self, id: String) {
///         self.0.push(id);
///     }
/// }
///
/// let mut printer = Printer::default();
/// dispatch(Event::parse("delete", Some("42")).unwrap(), &mut printer);
/// assert_eq!(printer.0, ["42"]);
/// ```
#[allow(unused_variables)]
pub trait StreamListener {
    /// `update`: a new status.
    fn on_update(&mut self, status: Status) {}
    /// `delete`: the id of a deleted status.
    fn on_delete(&mut self, status_id: String) {}
    /// `notification`: a new notification.
    fn on_notification(&mut self, notification: Notification) {}
    /// `status.update`: an edited status.
    fn on_status_update(&mut self, status: Status) {}
    /// `conversation`: a direct conversation changed.
    fn on_conversation(&mut self, conversation: Conversation) {}
    /// `announcement`: an announcement was published or changed.
    fn on_announcement(&mut self, announcement: Announcement) {}
    /// `announcement.reaction`: a reaction count changed.
    fn on_announcement_reaction(&mut self, reaction: AnnouncementReaction) {}
    /// `announcement.delete`: the id of a removed announcement.
    fn on_announcement_delete(&mut self, announcement_id: String) {}
    /// `filters_changed`: the user's filters changed.
    fn on_filters_changed(&mut self) {}
    /// `encrypted_message`: an encrypted message (servers before 4.3), raw.
    fn on_encrypted_message(&mut self, payload: Payload) {}
    /// `notifications_merged`: grouped notifications were merged.
    fn on_notifications_merged(&mut self) {}
    /// After an outage with catch-up on: what may be missing.
    fn on_gap(&mut self, gap: Gap) {}
    /// An event this library does not know, with its raw payload.
    fn on_unknown_event(&mut self, name: &str, payload: Payload) {}
    /// A heartbeat (`:)` or `:thump`): the connection is alive.
    fn handle_heartbeat(&mut self) {}
    /// The connection broke; `error` says why. Called for every break, also
    /// when a reconnect follows.
    fn on_abort(&mut self, error: &Error) {}
    /// An event was malformed and skipped; the stream goes on.
    fn on_malformed_event(&mut self, error: &Error) {}
    /// The connection's state changed (connecting, open, reconnecting, closed).
    fn on_connection_state(&mut self, state: &ConnectionState) {}
    /// This listener fell behind on a connection shared with other
    /// subscriptions, and `lost` events were dropped for it (with catch-up
    /// on they are fetched back and [`on_gap`](Self::on_gap) is called instead).
    fn on_lagged(&mut self, lost: u64) {}
    /// Every event passes here first; the default calls the typed method.
    fn on_event(&mut self, event: Event) {
        dispatch_typed(event, self);
    }
}

/// Hands one event to a listener.
pub fn dispatch<L: StreamListener + ?Sized>(event: Event, listener: &mut L) {
    listener.on_event(event);
}

/// Hands one stream item to a listener: an event to [`on_event`](StreamListener::on_event),
/// a heartbeat to [`handle_heartbeat`](StreamListener::handle_heartbeat), a
/// skipped event to [`on_malformed_event`](StreamListener::on_malformed_event),
/// a break to [`on_abort`](StreamListener::on_abort) and, like every change of
/// the connection, to [`on_connection_state`](StreamListener::on_connection_state).
pub fn dispatch_item<L: StreamListener + ?Sized>(item: Item, listener: &mut L) {
    match item {
        Item::Event(event) => listener.on_event(event),
        Item::Heartbeat => listener.handle_heartbeat(),
        Item::Skipped(error) => listener.on_malformed_event(&error),
        Item::Connecting => listener.on_connection_state(&ConnectionState::Connecting),
        Item::Connected => listener.on_connection_state(&ConnectionState::Open),
        Item::Reconnecting {
            attempt,
            delay,
            reason,
        } => {
            listener.on_abort(&reason);
            listener.on_connection_state(&ConnectionState::Reconnecting {
                attempt,
                delay,
                reason,
            });
        }
        Item::Lagged { lost, .. } => listener.on_lagged(lost),
    }
}

/// Hands `item` to the listener, catching a panic in it: a listener that
/// panics ends its stream with [`Error::ListenerPanicked`], the panic's text
/// kept.
pub(crate) fn deliver_guarded<L: StreamListener + ?Sized>(
    item: Result<Item, Error>,
    listener: &mut L,
) -> Option<Result<(), Error>> {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match item {
        Ok(item) => {
            dispatch_item(item, listener);
            None
        }
        Err(error) => {
            listener.on_abort(&error);
            Some(Err(error))
        }
    }));
    outcome.unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_owned());
        Some(Err(Error::ListenerPanicked(message)))
    })
}

/// Calls the typed method for the event's name: what [`StreamListener::on_event`] does by default.
///
/// An event taken on demand (a client built with `parse_on_demand`) whose
/// payload is not the entity its name calls for goes to
/// [`on_malformed_event`](StreamListener::on_malformed_event) instead.
pub fn dispatch_typed<L: StreamListener + ?Sized>(event: Event, listener: &mut L) {
    let (kind, payload) = event.into_parts();
    let kind = match kind {
        Ok(kind) => kind,
        Err(error) => return listener.on_malformed_event(&error),
    };
    match kind {
        EventKind::Update(status) => listener.on_update(*status),
        EventKind::Delete(id) => listener.on_delete(id),
        EventKind::Notification(notification) => listener.on_notification(*notification),
        EventKind::StatusUpdate(status) => listener.on_status_update(*status),
        EventKind::Conversation(conversation) => listener.on_conversation(*conversation),
        EventKind::Announcement(announcement) => listener.on_announcement(*announcement),
        EventKind::AnnouncementReaction(reaction) => listener.on_announcement_reaction(reaction),
        EventKind::AnnouncementDelete(id) => listener.on_announcement_delete(id),
        EventKind::FiltersChanged => listener.on_filters_changed(),
        EventKind::EncryptedMessage => listener.on_encrypted_message(payload),
        EventKind::NotificationsMerged => listener.on_notifications_merged(),
        EventKind::Unknown(name) => listener.on_unknown_event(&name, payload),
        EventKind::Gap(gap) => listener.on_gap(gap),
        // The protocol crate is released with this one; a kind it adds gets
        // its method here in the same release.
        _ => {}
    }
}

type EventHandler = Box<dyn FnMut(Event) + Send>;
type UnknownHandler = Box<dyn FnMut(&str, Payload) + Send>;
type ErrorHandler = Box<dyn FnMut(&Error) + Send>;
type StateHandler = Box<dyn FnMut(&ConnectionState) + Send>;

/// A listener made of closures, with a handler for any event name.
///
/// A handler given with [`on`](Self::on) takes precedence over the typed
/// handlers for that name, so an event no version of this library knows yet
/// (or a known one whose typed view you do not want) reaches your code as it
/// was sent. Events of unknown names with no handler go to
/// [`on_unknown_event`](Self::on_unknown_event).
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use mastostream::listener::{dispatch, CallbackListener};
/// use mastostream::Event;
///
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let log = seen.clone();
/// let mut listener = CallbackListener::new()
///     .on("some.future_event", move |event| log.lock().unwrap().push(event.name().to_owned()))
///     .on_delete(|id| println!("deleted {id}"));
/// dispatch(Event::parse("some.future_event", Some("{}")).unwrap(), &mut listener);
/// assert_eq!(*seen.lock().unwrap(), ["some.future_event"]);
/// ```
#[derive(Default)]
pub struct CallbackListener {
    by_name: HashMap<String, EventHandler>,
    typed: HashMap<&'static str, EventHandler>,
    unknown: Option<UnknownHandler>,
    heartbeat: Option<Box<dyn FnMut() + Send>>,
    abort: Option<ErrorHandler>,
    malformed: Option<ErrorHandler>,
    state: Option<StateHandler>,
    lagged: Option<Box<dyn FnMut(u64) + Send>>,
}

impl fmt::Debug for CallbackListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&str> = self.by_name.keys().map(String::as_str).collect();
        names.sort_unstable();
        f.debug_struct("CallbackListener")
            .field("by_name", &names)
            .field("typed", &self.typed.len())
            .finish_non_exhaustive()
    }
}

/// Registers a typed handler that unpacks one [`EventKind`] variant.
macro_rules! typed_handler {
    ($(#[$doc:meta])* $method:ident, $name:literal, |$handler:ident($($arg:ty),*)| $pattern:pat => $call:expr) => {
        $(#[$doc])*
        pub fn $method(mut self, mut $handler: impl FnMut($($arg),*) + Send + 'static) -> Self {
            self.typed.insert(
                $name,
                Box::new(move |event: Event| {
                    if let Ok($pattern) = event.into_parts().0 {
                        $call
                    }
                }),
            );
            self
        }
    };
}

impl CallbackListener {
    /// A listener with no handlers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Handles every event called `name`, typed or not, known or not.
    pub fn on(
        mut self,
        name: impl Into<String>,
        handler: impl FnMut(Event) + Send + 'static,
    ) -> Self {
        self.by_name.insert(name.into(), Box::new(handler));
        self
    }

    typed_handler!(
        /// Handles catch-up's gap reports.
        on_gap, "mastostream.gap", |h(Gap)| EventKind::Gap(g) => h(g));
    typed_handler!(/// Handles `update`.
        on_update, "update", |h(Status)| EventKind::Update(s) => h(*s));
    typed_handler!(/// Handles `delete`.
        on_delete, "delete", |h(String)| EventKind::Delete(id) => h(id));
    typed_handler!(/// Handles `notification`.
        on_notification, "notification", |h(Notification)| EventKind::Notification(n) => h(*n));
    typed_handler!(/// Handles `status.update`.
        on_status_update, "status.update", |h(Status)| EventKind::StatusUpdate(s) => h(*s));
    typed_handler!(/// Handles `conversation`.
        on_conversation, "conversation", |h(Conversation)| EventKind::Conversation(c) => h(*c));
    typed_handler!(/// Handles `announcement`.
        on_announcement, "announcement", |h(Announcement)| EventKind::Announcement(a) => h(*a));
    typed_handler!(/// Handles `announcement.reaction`.
        on_announcement_reaction, "announcement.reaction",
        |h(AnnouncementReaction)| EventKind::AnnouncementReaction(r) => h(r));
    typed_handler!(/// Handles `announcement.delete`.
        on_announcement_delete, "announcement.delete",
        |h(String)| EventKind::AnnouncementDelete(id) => h(id));
    typed_handler!(/// Handles `filters_changed`.
        on_filters_changed, "filters_changed", |h()| EventKind::FiltersChanged => h());
    typed_handler!(/// Handles `notifications_merged`.
        on_notifications_merged, "notifications_merged",
        |h()| EventKind::NotificationsMerged => h());

    /// Handles `encrypted_message`, with its raw payload.
    pub fn on_encrypted_message(
        mut self,
        mut handler: impl FnMut(Payload) + Send + 'static,
    ) -> Self {
        self.typed.insert(
            "encrypted_message",
            Box::new(move |event: Event| handler(event.into_parts().1)),
        );
        self
    }

    /// Handles events of names this library does not know and no [`on`](Self::on) handler took.
    pub fn on_unknown_event(mut self, handler: impl FnMut(&str, Payload) + Send + 'static) -> Self {
        self.unknown = Some(Box::new(handler));
        self
    }

    /// Handles heartbeats.
    pub fn on_heartbeat(mut self, handler: impl FnMut() + Send + 'static) -> Self {
        self.heartbeat = Some(Box::new(handler));
        self
    }

    /// Handles connection breaks.
    pub fn on_abort(mut self, handler: impl FnMut(&Error) + Send + 'static) -> Self {
        self.abort = Some(Box::new(handler));
        self
    }

    /// Handles malformed events that were skipped.
    pub fn on_malformed_event(mut self, handler: impl FnMut(&Error) + Send + 'static) -> Self {
        self.malformed = Some(Box::new(handler));
        self
    }

    /// Handles [`StreamListener::on_lagged`]: how many events were dropped.
    pub fn on_lagged(mut self, handler: impl FnMut(u64) + Send + 'static) -> Self {
        self.lagged = Some(Box::new(handler));
        self
    }

    /// Handles connection state changes.
    pub fn on_connection_state(
        mut self,
        handler: impl FnMut(&ConnectionState) + Send + 'static,
    ) -> Self {
        self.state = Some(Box::new(handler));
        self
    }
}

impl StreamListener for CallbackListener {
    fn on_event(&mut self, event: Event) {
        if let Some(handler) = self.by_name.get_mut(event.name()) {
            return handler(event);
        }
        // Typed handlers get the entity; one that cannot be built (an event
        // taken on demand) is reported as malformed instead.
        if let Err(error) = event.kind() {
            return self.on_malformed_event(&error);
        }
        if let Some(handler) = self.typed.get_mut(event.name()) {
            return handler(event);
        }
        if let Ok(EventKind::Unknown(_)) = event.kind() {
            let (kind, payload) = event.into_parts();
            if let (Ok(EventKind::Unknown(name)), Some(handler)) = (kind, self.unknown.as_mut()) {
                handler(&name, payload);
            }
        }
    }

    fn handle_heartbeat(&mut self) {
        if let Some(handler) = self.heartbeat.as_mut() {
            handler();
        }
    }

    fn on_abort(&mut self, error: &Error) {
        if let Some(handler) = self.abort.as_mut() {
            handler(error);
        }
    }

    fn on_malformed_event(&mut self, error: &Error) {
        if let Some(handler) = self.malformed.as_mut() {
            handler(error);
        }
    }

    fn on_connection_state(&mut self, state: &ConnectionState) {
        if let Some(handler) = self.state.as_mut() {
            handler(state);
        }
    }

    fn on_lagged(&mut self, lost: u64) {
        if let Some(handler) = self.lagged.as_mut() {
            handler(lost);
        }
    }
}

#[cfg(test)]
mod tests;
