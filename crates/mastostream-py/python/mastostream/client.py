"""``StreamingClient``: Mastodon.py's streaming methods, with its parameters
and defaults (2.3.3), on the engine."""

from . import errors
from .entities import caster
from ._native import Engine, EngineError
from .events import EventIterator
from .handles import StreamHandle, WebSocketStreamHandle
from .lifecycle import open_feed
from .pump import Pump, Route

_DEFAULT_STREAM_TIMEOUT = 300
_DEFAULT_STREAM_RECONNECT_WAIT_SEC = 5


def _unpack_id(value):
    """An id, or the id of an entity passed instead (as Mastodon.py accepts)."""
    if isinstance(value, dict) and "id" in value:
        return value["id"]
    return value


def _run_blocking(engine, name, params, listener, cast):
    """Streams until the server ends the stream (returns None) or something
    breaks it (raises, after ``on_abort`` if it had connected). Handler
    exceptions propagate, closing the stream. Ctrl-C ends it at once."""
    feed = open_feed(engine)
    try:
        try:
            subscription = feed.subscribe(name, params)
        except ValueError as err:
            raise errors.MastodonIllegalArgumentError(str(err)) from err
        pump = Pump(feed)
        route = Route(listener, None, cast=cast)
        pump.add(subscription, route)
        while True:
            batch = feed.next(None)
            if batch is None:
                return None
            if pump.handle(batch):
                if route.error is None or route.error.kind == "ended":
                    return None  # the server ended the stream
                if route.connected_once:
                    route.dispatcher.abort(route.error)
                raise route.error
    finally:
        feed.close()


class StreamingClient:
    """A Mastodon server's streaming API, as Mastodon.py's ``Mastodon`` offers
    it: ``StreamingClient(api_base_url, access_token)`` then
    ``stream_user(listener)`` and the rest.

    Beyond it, keyword-only: ``transport`` for the single streams (``"sse"``
    as Mastodon.py; ``"websocket"``; ``"auto"`` switches to the WebSocket
    where the server serves no SSE), ``catch_up`` (after an outage, what was
    missed is fetched over REST and delivered before the live events),
    ``streaming_url`` (else discovered from the instance), ``cacert`` (PEM
    files of extra trusted roots), ``proxy`` (else ``HTTPS_PROXY`` & co.),
    ``entities`` (``"auto"``: Mastodon.py's classes when it is installed;
    ``"plain"``: attribute dicts, decoded in one pass, much cheaper),
    ``server_software`` (``"mastodon"``, ``"glitch-soc"``, ``"pleroma"``,
    ``"akkoma"``, ``"gotosocial"``, ``"iceshrimp"``: with a ``streaming_url``
    the server is not asked what it runs, and Pleroma and Akkoma take a
    WebSocket's token elsewhere than Mastodon: name it, or their user
    streams are refused or anonymous).
    """

    def __init__(
        self,
        api_base_url,
        access_token=None,
        user_agent=None,
        *,
        transport="sse",
        catch_up=False,
        streaming_url=None,
        cacert=None,
        proxy=None,
        request_timeout=None,
        entities="auto",
        server_software=None,
    ):
        if not api_base_url:
            raise errors.MastodonIllegalArgumentError("api_base_url is required")
        if "://" not in api_base_url:
            api_base_url = "https://" + api_base_url
        self.api_base_url = api_base_url.rstrip("/")
        self.access_token = access_token
        self.user_agent = user_agent
        self.transport = transport
        self._options = {
            "user_agent": user_agent,
            "catch_up": catch_up,
            "streaming_url": streaming_url,
            "cacert": [cacert] if isinstance(cacert, str) else list(cacert or []),
            "proxy": proxy,
            "connect_timeout": request_timeout,
            "server_software": server_software,
        }
        self._engines = {}
        try:
            self._cast = caster(entities)
        except ValueError as err:
            raise errors.MastodonIllegalArgumentError(str(err)) from None

    def __repr__(self):
        return f"<mastostream.StreamingClient for {self.api_base_url}>"

    def engine(self, transport=None, reconnect="backoff", wait=5.0, timeout=_DEFAULT_STREAM_TIMEOUT):
        """The engine for these settings (made once, then shared)."""
        transport = transport or self.transport
        key = (transport, reconnect, float(wait), timeout)
        engine = self._engines.get(key)
        if engine is None:
            try:
                engine = Engine(
                    self.api_base_url,
                    self.access_token,
                    transport=transport,
                    reconnect=reconnect,
                    reconnect_wait=float(wait),
                    stall_timeout=None if timeout is None else float(timeout),
                    **self._options,
                )
            except ValueError as err:
                raise errors.MastodonIllegalArgumentError(str(err)) from err
            except EngineError as err:
                raise errors.from_engine(err.args[0]) from None
            self._engines[key] = engine
        return engine

    def _stream(self, name, params, listener, run_async, timeout, reconnect_async,
                reconnect_async_wait_sec, websocket_handle):
        if websocket_handle is not None:
            if not isinstance(websocket_handle, WebSocketStreamHandle):
                raise errors.MastodonIllegalArgumentError("websocket_handle must be a WebSocket stream handle.")
            return websocket_handle.subscribe(name, listener=listener, **dict(params))
        pairs = [(str(k), str(v)) for k, v in params]
        if run_async:
            reconnect = "fixed" if reconnect_async else "off"
            engine = self.engine(None, reconnect, reconnect_async_wait_sec, timeout)
            handle = StreamHandle(engine, name, pairs, listener, reconnect_async, reconnect_async_wait_sec,
                                  self._cast)
            return handle._start(handle._threadproc)
        engine = self.engine(None, "off", reconnect_async_wait_sec, timeout)
        return _run_blocking(engine, name, pairs, listener, self._cast)

    # Mastodon.py's streaming calls, with its parameters and defaults.

    def stream_user(self, listener, run_async=False, timeout=_DEFAULT_STREAM_TIMEOUT, reconnect_async=False,
                    reconnect_async_wait_sec=_DEFAULT_STREAM_RECONNECT_WAIT_SEC, websocket_handle=None):
        """The user's home timeline and notifications."""
        return self._stream("user", [], listener, run_async, timeout, reconnect_async,
                            reconnect_async_wait_sec, websocket_handle)

    def stream_user_notifications(self, listener, run_async=False, timeout=_DEFAULT_STREAM_TIMEOUT,
                                  reconnect_async=False,
                                  reconnect_async_wait_sec=_DEFAULT_STREAM_RECONNECT_WAIT_SEC,
                                  websocket_handle=None):
        """The user's notifications."""
        return self._stream("user:notification", [], listener, run_async, timeout, reconnect_async,
                            reconnect_async_wait_sec, websocket_handle)

    def stream_public(self, listener, run_async=False, timeout=_DEFAULT_STREAM_TIMEOUT, reconnect_async=False,
                      reconnect_async_wait_sec=_DEFAULT_STREAM_RECONNECT_WAIT_SEC, local=False, remote=False,
                      only_media=False, websocket_handle=None):
        """The public timeline: ``local`` or ``remote`` posts only, ``only_media``."""
        if local and remote:
            raise errors.MastodonIllegalArgumentError(
                "Cannot pass both local and remote - use either one or the other.")
        name = "public" + (":local" if local else ":remote" if remote else "") + (":media" if only_media else "")
        return self._stream(name, [], listener, run_async, timeout, reconnect_async,
                            reconnect_async_wait_sec, websocket_handle)

    def stream_local(self, listener, run_async=False, timeout=_DEFAULT_STREAM_TIMEOUT, reconnect_async=False,
                     reconnect_async_wait_sec=_DEFAULT_STREAM_RECONNECT_WAIT_SEC, only_media=False,
                     websocket_handle=None):
        """Deprecated in Mastodon.py: ``stream_public(local=True)``."""
        return self.stream_public(listener, run_async=run_async, timeout=timeout,
                                  reconnect_async=reconnect_async,
                                  reconnect_async_wait_sec=reconnect_async_wait_sec, local=True,
                                  only_media=only_media, websocket_handle=websocket_handle)

    def stream_hashtag(self, tag, listener, local=False, run_async=False, timeout=_DEFAULT_STREAM_TIMEOUT,
                       reconnect_async=False, reconnect_async_wait_sec=_DEFAULT_STREAM_RECONNECT_WAIT_SEC,
                       websocket_handle=None):
        """Public posts with hashtag ``tag`` (without the ``#``)."""
        if tag.startswith("#"):
            raise errors.MastodonIllegalArgumentError("Tag parameter should omit leading #")
        name = "hashtag:local" if local else "hashtag"
        return self._stream(name, [("tag", tag)], listener, run_async, timeout, reconnect_async,
                            reconnect_async_wait_sec, websocket_handle)

    def stream_list(self, id, listener, run_async=False, timeout=_DEFAULT_STREAM_TIMEOUT, reconnect_async=False,
                    reconnect_async_wait_sec=_DEFAULT_STREAM_RECONNECT_WAIT_SEC, websocket_handle=None):
        """The user's list ``id`` (an id, or the list itself)."""
        return self._stream("list", [("list", _unpack_id(id))], listener, run_async, timeout,
                            reconnect_async, reconnect_async_wait_sec, websocket_handle)

    def stream_direct(self, listener, run_async=False, timeout=_DEFAULT_STREAM_TIMEOUT, reconnect_async=False,
                      reconnect_async_wait_sec=_DEFAULT_STREAM_RECONNECT_WAIT_SEC, websocket_handle=None):
        """The user's direct conversations."""
        return self._stream("direct", [], listener, run_async, timeout, reconnect_async,
                            reconnect_async_wait_sec, websocket_handle)

    def stream_open_websocket(self, listener=None, timeout=_DEFAULT_STREAM_TIMEOUT, reconnect_async=False,
                              reconnect_async_wait_sec=_DEFAULT_STREAM_RECONNECT_WAIT_SEC):
        """A multiplexed WebSocket without subscriptions yet: ``subscribe()``
        on the handle, or pass it as ``websocket_handle=`` to the calls above."""
        reconnect = "fixed" if reconnect_async else "off"
        engine = self.engine("websocket", reconnect, reconnect_async_wait_sec, timeout)
        return WebSocketStreamHandle(engine, listener, reconnect_async, self._cast)

    def stream_healthy(self):
        """True if the streaming server answers its health check with OK;
        False if it answers otherwise; raises if it cannot be reached."""
        problem = self.engine().health()
        if problem is None:
            return True
        if problem[0] == "http" and problem[2] == 200:
            return False  # answered, but not OK
        raise errors.from_engine(problem)

    # Beyond Mastodon.py.

    def stream(self, name, *, reconnect=True, heartbeats=False, lifecycle=False, **params):
        """The events of stream ``name`` (``"public"``, ``"user"``,
        ``"hashtag"`` with ``tag=``, ``"list"`` with ``list=``, a server's own
        name...) to iterate over, with ``async for`` or ``for``. Reconnects
        with backoff unless ``reconnect=False``; only what ends the stream
        raises."""
        engine = self.engine(None, "backoff" if reconnect else "off", _DEFAULT_STREAM_RECONNECT_WAIT_SEC,
                             _DEFAULT_STREAM_TIMEOUT)
        pairs = [(str(k), str(v)) for k, v in params.items()]
        return EventIterator(engine, name, pairs, heartbeats=heartbeats, lifecycle=lifecycle, cast=self._cast)


# The name Mastodon.py users know.
Mastodon = StreamingClient
