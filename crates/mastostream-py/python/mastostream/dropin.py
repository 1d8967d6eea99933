"""The drop-in: an existing ``mastodon.Mastodon`` streams through the engine."""

from .client import StreamingClient

STREAM_METHODS = (
    "stream_user",
    "stream_user_notifications",
    "stream_public",
    "stream_local",
    "stream_hashtag",
    "stream_list",
    "stream_direct",
    "stream_open_websocket",
    "stream_healthy",
)


def use_engine(api, **options):
    """Makes ``api`` (a ``mastodon.Mastodon``) stream through mastostream:
    its ``stream_*`` methods are replaced, on this instance only, by ours,
    made from its ``api_base_url``, ``access_token`` and ``user_agent``.
    Callers keep calling ``api.stream_user(listener)``. ``options`` are
    :class:`StreamingClient`'s (``catch_up=True``, ``transport=...``).
    Returns ``api``; ``api.mastostream`` is the client."""
    client = StreamingClient(
        api.api_base_url,
        getattr(api, "access_token", None),
        user_agent=getattr(api, "user_agent", None),
        **options,
    )
    for name in STREAM_METHODS:
        setattr(api, name, getattr(client, name))
    api.mastostream = client
    return api
