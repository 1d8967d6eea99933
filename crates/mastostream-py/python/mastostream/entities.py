"""Payloads as Mastodon.py hands them to listeners.

With Mastodon.py installed, an event's payload is cast by default with its
own ``try_cast_recurse`` into its own classes (``Status``, ``Notification``,
...), by the same table keyed by event name that its ``StreamListener`` uses.
Without it, or with ``entities="plain"``, JSON objects become
:class:`AttribDict` (a dict whose keys are also attributes), built as the
JSON is decoded, and ids stay strings: the same access at a fraction of the
cost (Mastodon.py's cast takes milliseconds per status).
"""

import json


class AttribDict(dict):
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


# Events whose handlers take no payload, in both tables.
_NO_PAYLOAD = frozenset(("filters_changed", "notifications_merged"))


def has_payload(name):
    """Whether handlers for this event are called with a payload."""
    return name not in _NO_PAYLOAD


def _decode(raw, object_hook=None):
    try:
        return json.loads(raw, object_hook=object_hook)
    except ValueError:
        # Bare text that is not JSON (an id in a format of its own) stays text.
        return raw


def cast_plain(name, raw):
    """The payload as :class:`AttribDict` objects (None without one)."""
    if raw is None:
        return None
    value = _decode(raw, AttribDict)
    if name in ("delete", "announcement.delete") and isinstance(value, (int, float)):
        return str(value)
    return value


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
    # to AttribAccessDict, as they do there.
    _TYPES = {
        "update": Status,
        "delete": IdType,
        "notification": Notification,
        "conversation": Conversation,
        "announcement": Announcement,
        "announcement_reaction": StreamReaction,
        "announcement_delete": IdType,
        "status_update": Status,
        "encrypted_message": AttribAccessDict,
    }

    def cast_mastodon(name, raw):
        """The payload as Mastodon.py's listeners get it (None without one)."""
        if raw is None:
            return None
        return try_cast_recurse(_TYPES.get(name, AttribAccessDict), _decode(raw))

    MASTODON_PY_ENTITIES = True
    cast = cast_mastodon
except ImportError:
    MASTODON_PY_ENTITIES = False
    AttribAccessDict = AttribDict
    cast_mastodon = None
    cast = cast_plain


def caster(choice):
    """The cast for ``entities=``: ``"auto"`` (Mastodon.py's classes when it
    is installed), ``"mastodon"`` or ``"plain"``."""
    if choice == "auto":
        return cast
    if choice == "plain":
        return cast_plain
    if choice == "mastodon":
        if cast_mastodon is None:
            raise ValueError('entities="mastodon" needs Mastodon.py installed')
        return cast_mastodon
    raise ValueError(f'entities must be "auto", "mastodon" or "plain", not {choice!r}')
