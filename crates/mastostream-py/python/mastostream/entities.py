"""Payloads as Mastodon.py hands them to listeners.

With Mastodon.py installed, an event's payload is cast with its own
``try_cast_recurse`` into its own classes (``Status``, ``Notification``, ...),
by the same table keyed by event name that its ``StreamListener`` uses. Without
it, JSON objects become :class:`AttribAccessDict` (a dict whose keys are also
attributes) and ids stay strings.
"""

import json

try:  # pragma: no cover - which branch runs depends on the environment
    from mastodon.return_types import (
        Announcement,
        AttribAccessDict,
        Conversation,
        IdType,
        Notification,
        Status,
        StreamReaction,
        try_cast_recurse,
    )

    # Mastodon.py 2.3's table: keyed by the raw event name, so the dotted
    # names (status.update, announcement.reaction, ...) miss it and fall back
    # to AttribAccessDict, as they do there. None: the event has no payload.
    _TYPES = {
        "update": Status,
        "delete": IdType,
        "notification": Notification,
        "filters_changed": None,
        "conversation": Conversation,
        "announcement": Announcement,
        "announcement_reaction": StreamReaction,
        "announcement_delete": IdType,
        "status_update": Status,
        "encrypted_message": AttribAccessDict,
        "notifications_merged": None,
    }

    def _cast(name, value):
        return try_cast_recurse(_TYPES.get(name, AttribAccessDict), value)

    MASTODON_PY_ENTITIES = True
except ImportError:
    MASTODON_PY_ENTITIES = False

    class AttribAccessDict(dict):
        """A dict whose keys read as attributes too: ``status.account.acct``."""

        __slots__ = ()

        def __getattr__(self, name):
            try:
                return self[name]
            except KeyError:
                raise AttributeError(f"no attribute {name!r}") from None

        def __setattr__(self, name, value):
            self[name] = value

        def __delattr__(self, name):
            try:
                del self[name]
            except KeyError:
                raise AttributeError(f"no attribute {name!r}") from None

    _TYPES = {"filters_changed": None, "notifications_merged": None}

    def _wrap(value):
        if isinstance(value, dict):
            return AttribAccessDict((k, _wrap(v)) for k, v in value.items())
        if isinstance(value, list):
            return [_wrap(v) for v in value]
        return value

    def _cast(name, value):
        if name in ("delete", "announcement.delete") and isinstance(value, (int, float)):
            return str(value)
        return _wrap(value)


def has_payload(name):
    """Whether handlers for this event are called with a payload."""
    return _TYPES.get(name, AttribAccessDict) is not None


def cast(name, raw):
    """The payload a listener gets for event ``name`` with payload text ``raw``
    (None when the event had none). The engine validated JSON payloads; a
    bare text that is not JSON (an id in a format of its own) stays text."""
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return _cast(name, value)
