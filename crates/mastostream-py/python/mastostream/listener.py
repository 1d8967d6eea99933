"""Listeners: Mastodon.py's ``StreamListener`` and ``CallbackStreamListener``
(the same names, methods and calling conventions), and the dispatcher that
calls any listener the way Mastodon.py 2.3 does.

A listener is any object: for an event ``name`` its ``on_<name>`` method
(dots become underscores: ``status.update`` calls ``on_status_update``) is
called with the payload, or ``on_unknown_event(name, payload)`` when it has
none. ``on_any_event(name, payload)`` comes first. A handler that declares a
``for_stream`` parameter gets the stream the event came from (on the
WebSocket, e.g. ``["hashtag", "rust"]``). Methods a listener lacks are
skipped, so Mastodon.py's own listener classes, their subclasses and plain
objects all work.
"""

import inspect

from . import entities
from .errors import MastodonMalformedEventError


def _accepts_for_stream(handler):
    try:
        return "for_stream" in inspect.signature(handler).parameters
    except (TypeError, ValueError):
        code = getattr(handler, "__code__", None)
        return code is not None and "for_stream" in code.co_varnames[: code.co_argcount]


class Dispatcher:
    """Calls one listener's handlers for events, as Mastodon.py does. Handler
    lookups and their signatures are read once per event name (Mastodon.py
    inspects both signatures for every event)."""

    def __init__(self, listener, for_stream=None, cast=None):
        self.listener = listener
        self._cast = cast if cast is not None else entities.cast
        self.for_stream = for_stream
        self._routes = {}
        on_any = getattr(listener, "on_any_event", None)
        self._on_any = on_any
        self._on_any_for_stream = on_any is not None and _accepts_for_stream(on_any)

    def _route(self, name):
        listener = self.listener
        handler = getattr(listener, "on_" + name.replace(".", "_"), None)
        unknown = handler is None
        if unknown:
            handler = getattr(listener, "on_unknown_event", None)
        route = (handler, unknown, handler is not None and _accepts_for_stream(handler))
        self._routes[name] = route
        return route

    def event(self, name, raw):
        """One event: ``raw`` is its payload text, or None."""
        payload = self._cast(name, raw)
        for_stream = self.for_stream
        if self._on_any is not None:
            if self._on_any_for_stream:
                self._on_any(name, payload, for_stream)
            else:
                self._on_any(name, payload)
        handler, unknown, with_stream = self._routes.get(name) or self._route(name)
        if handler is None:
            return
        if unknown:
            args = (name, payload)
        elif entities.has_payload(name):
            args = (payload,)
        else:
            args = ()
        if with_stream:
            handler(*args, for_stream=for_stream)
        else:
            handler(*args)

    def heartbeat(self):
        handler = getattr(self.listener, "handle_heartbeat", None)
        if handler is not None:
            handler()

    def abort(self, error):
        handler = getattr(self.listener, "on_abort", None)
        if handler is not None:
            handler(error)

    def websocket_error(self, error, for_stream):
        """The refusal of the subscription to ``for_stream``."""
        handler = getattr(self.listener, "on_websocket_error", None)
        if handler is not None:
            if _accepts_for_stream(handler):
                handler(error, for_stream=for_stream)
            else:
                handler(error)


class StreamListener:
    """Callbacks for the streaming API, as in Mastodon.py: subclass it and
    override the ``on_*`` methods for the events you want."""

    def on_update(self, status):
        """A new status appeared."""

    def on_delete(self, status_id):
        """A status was deleted."""

    def on_notification(self, notification):
        """A new notification."""

    def on_filters_changed(self):
        """The user's filters changed (no payload: fetch them again)."""

    def on_conversation(self, conversation):
        """A direct conversation was updated."""

    def on_announcement(self, announcement):
        """An announcement was published."""

    def on_announcement_reaction(self, reaction):
        """Someone reacted to an announcement."""

    def on_announcement_delete(self, announcement_id):
        """An announcement was deleted."""

    def on_status_update(self, status):
        """A status was edited."""

    def on_encrypted_message(self, unclear):
        """An encrypted message (unused by Mastodon)."""

    def on_notifications_merged(self):
        """Accepted notification requests finished merging."""

    def on_websocket_error(self, error, for_stream=None):
        """A WebSocket subscription was refused."""

    def on_abort(self, err):
        """The connection broke, timed out, or sent something malformed; the
        exception that is raised next (or, with reconnect, the reason for the
        reconnect) is passed."""

    def on_unknown_event(self, name, unknown_event=None):
        """An event with no ``on_*`` method of its own."""

    def handle_heartbeat(self):
        """The server sent a keep-alive."""

    def on_any_event(self, name, data=None, for_stream=None):
        """Called for every event, before its own handler."""


class CallbackStreamListener(StreamListener):
    """A listener made of callables, with Mastodon.py's keyword names
    (``encryted_message_handler`` misspelt as there)."""

    def __init__(
        self,
        update_handler=None,
        local_update_handler=None,
        delete_handler=None,
        notification_handler=None,
        conversation_handler=None,
        unknown_event_handler=None,
        status_update_handler=None,
        filters_changed_handler=None,
        announcement_handler=None,
        announcement_reaction_handler=None,
        announcement_delete_handler=None,
        encryted_message_handler=None,
        notifications_merged_handler=None,
        stream_error_handler=None,
    ):
        super().__init__()
        self.update_handler = update_handler
        self.local_update_handler = local_update_handler
        self.delete_handler = delete_handler
        self.notification_handler = notification_handler
        self.conversation_handler = conversation_handler
        self.unknown_event_handler = unknown_event_handler
        self.status_update_handler = status_update_handler
        self.filters_changed_handler = filters_changed_handler
        self.announcement_handler = announcement_handler
        self.announcement_reaction_handler = announcement_reaction_handler
        self.announcement_delete_handler = announcement_delete_handler
        self.encryted_message_handler = encryted_message_handler
        self.notifications_merged_handler = notifications_merged_handler
        self.stream_error_handler = stream_error_handler

    def on_update(self, status):
        if self.update_handler is not None:
            self.update_handler(status)
        # Local posts have a bare acct (no "@host"). As in Mastodon.py,
        # whatever goes wrong here is a malformed update.
        try:
            if self.local_update_handler is not None and "@" not in status["account"]["acct"]:
                self.local_update_handler(status)
        except Exception as err:
            raise MastodonMalformedEventError("received bad update", status) from err

    def on_delete(self, status_id):
        if self.delete_handler is not None:
            self.delete_handler(status_id)

    def on_notification(self, notification):
        if self.notification_handler is not None:
            self.notification_handler(notification)

    def on_filters_changed(self):
        if self.filters_changed_handler is not None:
            self.filters_changed_handler()

    def on_conversation(self, conversation):
        if self.conversation_handler is not None:
            self.conversation_handler(conversation)

    def on_announcement(self, announcement):
        if self.announcement_handler is not None:
            self.announcement_handler(announcement)

    def on_announcement_reaction(self, reaction):
        if self.announcement_reaction_handler is not None:
            self.announcement_reaction_handler(reaction)

    def on_announcement_delete(self, announcement_id):
        if self.announcement_delete_handler is not None:
            self.announcement_delete_handler(announcement_id)

    def on_status_update(self, status):
        if self.status_update_handler is not None:
            self.status_update_handler(status)

    def on_encrypted_message(self, unclear):
        if self.encryted_message_handler is not None:
            self.encryted_message_handler(unclear)

    def on_notifications_merged(self):
        if self.notifications_merged_handler is not None:
            self.notifications_merged_handler()

    def on_websocket_error(self, error, for_stream=None):
        if self.stream_error_handler is not None:
            self.stream_error_handler(error, for_stream)

    def on_unknown_event(self, name, unknown_event=None):
        if self.unknown_event_handler is not None:
            self.unknown_event_handler(name, unknown_event)
