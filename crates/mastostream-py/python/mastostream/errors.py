"""The exceptions streaming raises: Mastodon.py's own classes when it is
installed (so ``except MastodonNetworkError`` in existing code catches ours),
else classes of the same names and hierarchy."""

try:  # pragma: no cover - which branch runs depends on the environment
    from mastodon.errors import (
        MastodonAPIError,
        MastodonError,
        MastodonIllegalArgumentError,
        MastodonMalformedEventError,
        MastodonNetworkError,
        MastodonReadTimeout,
    )

    FROM_MASTODON_PY = True
except ImportError:
    FROM_MASTODON_PY = False

    class MastodonError(Exception):
        """Base class of every error raised here."""

    class MastodonIllegalArgumentError(ValueError, MastodonError):
        """An argument was not usable."""

    class MastodonIOError(IOError, MastodonError):
        """Base class of the input and output errors."""

    class MastodonNetworkError(MastodonIOError):
        """The connection could not be made, was refused, or broke."""

    class MastodonReadTimeout(MastodonNetworkError):
        """Nothing arrived, not even a heartbeat, within the timeout."""

    class MastodonAPIError(MastodonError):
        """The server answered with an error."""

    class MastodonMalformedEventError(MastodonError):
        """The server sent an event that could not be understood."""


class StreamingConfigError(MastodonIllegalArgumentError):
    """The engine could not be set up (a bad URL, CA file or proxy)."""


def from_engine(details):
    """The exception for an engine error tuple ``(kind, message, status,
    retry_after)``. ``status`` and ``retry_after`` are kept as attributes."""
    kind, message, status, retry_after = details
    if kind == "stalled":
        error = MastodonReadTimeout(message)
    elif kind in ("malformed", "too_large"):
        error = MastodonMalformedEventError(message)
    elif kind == "config":
        error = StreamingConfigError(message)
    elif kind == "http":
        # Mastodon.py's wording for a refused stream, then ours.
        error = MastodonNetworkError(f"Could not connect to streaming server: {message}")
    else:
        error = MastodonNetworkError(message)
    error.kind = kind
    error.status = status
    error.retry_after = retry_after
    return error
