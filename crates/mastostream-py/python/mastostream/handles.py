"""The background handles: ``run_async=True`` streams and the multiplexed
WebSocket of ``stream_open_websocket``, each with Mastodon.py's methods
(``close()``, ``is_alive()``, ``is_receiving()``, ``join()``)."""

import threading
import time

from . import errors
from .lifecycle import open_feed
from .listener import Dispatcher
from .pump import Pump, Route

# What a listener may raise and a handle with reconnect_async survives, as
# Mastodon.py's SSE handle does.
_SURVIVED_WITH_RECONNECT = (AttributeError, errors.MastodonMalformedEventError, errors.MastodonNetworkError)

# close() waits this long for the worker to finish (it wakes within 50 ms).
_CLOSE_WAIT_SEC = 0.1


class _Worker:
    """A handle's thread and the state Mastodon.py's handles expose."""

    def __init__(self):
        self._thread = None
        self.closed = False
        self.running = True
        self.error = None
        self._feed = None

    def is_alive(self):
        """True while the worker thread runs (connected, or reconnecting)."""
        return self._thread is not None and self._thread.is_alive()

    def join(self, timeout=None):
        """Waits for the worker thread to end (returns at once from within it)."""
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def close(self):
        """Stops streaming for good and closes the connection. Returns within
        about 100 ms, by then the worker thread has ended (unless called from
        a listener, on that thread)."""
        self.closed = True
        pump = getattr(self, "_pump", None)
        if pump is not None:
            # Not one handler more, even for what is already read.
            pump.closed = True
        feed = self._feed
        if feed is not None:
            feed.close()
        self.join(_CLOSE_WAIT_SEC)

    def _start(self, target):
        self._thread = threading.Thread(target=target, name="mastostream", daemon=True)
        self._thread.start()
        return self

    def _sleep_attentive(self, seconds):
        deadline = time.monotonic() + seconds
        while not self.closed and time.monotonic() < deadline:
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        self.join()


class StreamHandle(_Worker):
    """One stream in the background (``run_async=True``), as Mastodon.py's
    ``SSEStreamHandle``. The first connection is retried every
    ``reconnect_async_wait_sec`` until it works (a refusal, 401 or 404 say,
    is not: it goes to ``on_abort`` and ends the handle); after that, a break
    ends the handle unless ``reconnect_async``, with which the engine
    reconnects after the same wait and catches up if the client was made
    with ``catch_up=True``."""

    def __init__(self, engine, name, params, listener, reconnect_async, reconnect_async_wait_sec, cast=None):
        super().__init__()
        self._cast = cast
        self.listener = listener
        self.reconnect_async = reconnect_async
        self.reconnect_async_wait_sec = reconnect_async_wait_sec
        self._engine = engine
        self._name = name
        self._params = params
        self._pump = None

    @property
    def reconnecting(self):
        pump = self._pump
        return self.running and (pump is None or not pump.receiving)

    def is_receiving(self):
        """True while the connection is up and events can arrive."""
        feed = self._feed
        return (
            self.running
            and not self.closed
            and self.is_alive()
            and feed is not None
            and feed.is_receiving()
        )

    def _threadproc(self):
        try:
            while not self.closed:
                try:
                    route = self._stream_once()
                except _SURVIVED_WITH_RECONNECT:
                    # As Mastodon.py: these are survived with
                    # reconnect_async (the stream is opened again). A
                    # handler's are survived in _stream_once, on the same
                    # connection.
                    if self.reconnect_async and not self.closed:
                        continue
                    raise
                if route is None or route.error is None or route.error.kind == "ended":
                    # Closed, or the server ended the stream: the thread
                    # ends quietly, as Mastodon.py's (with reconnect_async
                    # the engine has already reconnected).
                    return
                error = route.error
                self.error = error
                if route.connected_once:
                    route.dispatcher.abort(error)
                    if self.reconnect_async or self.closed:
                        return  # the engine gave up: the error was final
                    raise error
                if error.kind in ("http", "unsupported", "config", "certificate"):
                    route.dispatcher.abort(error)
                    return
                self._sleep_attentive(self.reconnect_async_wait_sec)
        finally:
            self.running = False

    def _stream_once(self):
        feed = open_feed(self._engine)
        self._feed = feed
        try:
            if self.closed:
                return None
            subscription = feed.subscribe(self._name, self._params)
            pump = Pump(feed)
            route = Route(self.listener, None, cast=self._cast)
            pump.add(subscription, route)
            self._pump = pump
            while not self.closed:
                batch = pump.next_batch()
                if batch is None:
                    return None
                try:
                    if pump.handle(batch):
                        return route
                except _SURVIVED_WITH_RECONNECT:
                    # Mastodon.py closes the connection here and opens a
                    # new one, losing what the old one had brought and
                    # what came meanwhile. The connection is fine: keep it,
                    # and go on with the rest of the batch.
                    if not self.reconnect_async or self.closed:
                        raise
        finally:
            feed.close()


class WebSocketSubscription:
    """One stream on a shared WebSocket (Mastodon.py's class of that name)."""

    def __init__(self, websocket, stream, params, listener, number):
        self.websocket = websocket
        self.stream = stream
        self.params = dict(params)
        self.listener = listener
        self.active = True
        self._number = number

    def close(self):
        """Unsubscribes."""
        if self.active:
            self.websocket._unsubscribe(self)

    def is_alive(self):
        return self.active and self.websocket.is_alive()

    def is_receiving(self):
        return self.active and self.websocket.is_receiving()


def _subscription_key(stream, params):
    if stream == "list":
        return (stream, str(params.get("list")))
    if stream in ("hashtag", "hashtag:local"):
        return (stream, str(params.get("tag")).lower())
    return (stream,)


def _for_stream(stream, params):
    """The ``stream`` array Mastodon sends with each event of this stream."""
    if stream in ("hashtag", "hashtag:local") and "tag" in params:
        return [stream, str(params["tag"])]
    if stream == "list" and "list" in params:
        return [stream, str(params["list"])]
    return [stream]


class WebSocketStreamHandle(_Worker):
    """A multiplexed WebSocket (``stream_open_websocket``): one connection,
    subscriptions added and removed at any time, each with its own listener
    or the handle's. With ``reconnect_async`` the engine reconnects and sends
    every live subscription again."""

    def __init__(self, engine, listener=None, reconnect_async=False, cast=None, connect_timeout=30.0):
        super().__init__()
        self._cast = cast
        self.listener = listener
        self.reconnect = reconnect_async
        self._lock = threading.RLock()
        self._subscriptions = {}
        self._feed = open_feed(engine)
        self._pump = Pump(self._feed)
        # The handle's own listener, told of refusals and breaks too.
        self._default = None if listener is None else Dispatcher(listener, None, cast)
        self._broken = False
        # As Mastodon.py, the connection is made here: a refusal or an
        # unreachable server raises from stream_open_websocket.
        problem = self._feed.wait_connected(connect_timeout)
        if problem is not None:
            self.running = False
            self._feed.close()
            error = errors.from_engine(problem)
            if problem[0] == "http":
                error = errors.MastodonNetworkError(str(error))
                error.status = problem[2]
            raise error
        self._start(self._threadproc)

    @property
    def reconnecting(self):
        return self.running and not self._feed.is_receiving()

    def is_receiving(self):
        return self.running and not self.closed and self.is_alive() and self._feed.is_receiving()

    def subscriptions(self):
        """The live subscriptions."""
        with self._lock:
            return list(self._subscriptions.values())

    def subscribe(self, stream, listener=None, **params):
        """Subscribes to ``stream`` (``"user"``, ``"public:local"``,
        ``"hashtag"`` with ``tag=``, ``"list"`` with ``list=``, or a server's
        own name); returns a :class:`WebSocketSubscription`."""
        listener = listener if listener is not None else self.listener
        if listener is None:
            raise errors.MastodonIllegalArgumentError(
                "A listener is required when subscribing to a WebSocket stream."
            )
        key = _subscription_key(stream, params)
        with self._lock:
            if self.closed:
                raise errors.MastodonIllegalArgumentError("Cannot subscribe using a closed WebSocket stream.")
            if key in self._subscriptions:
                raise errors.MastodonIllegalArgumentError(f"Already subscribed to WebSocket stream {key!r}.")
            pairs = [(str(k), str(v)) for k, v in params.items()]
            # Routed before it is made: its first items (a refusal the
            # engine gives at once, say) may arrive before subscribe returns.
            number = self._feed.reserve()
            subscription = WebSocketSubscription(self, stream, params, listener, number)
            self._pump.add(number, Route(listener, _for_stream(stream, params), subscription, self._cast))
            try:
                self._feed.subscribe(stream, pairs, number)
            except ValueError as err:
                self._pump.remove(number)
                raise errors.MastodonIllegalArgumentError(str(err)) from err
            self._subscriptions[key] = subscription
        return subscription

    def unsubscribe(self, stream, **params):
        """Unsubscribes from what ``subscribe(stream, **params)`` subscribed to."""
        key = _subscription_key(stream, params)
        with self._lock:
            subscription = self._subscriptions.get(key)
        if subscription is None:
            raise errors.MastodonIllegalArgumentError(f"Not subscribed to WebSocket stream {key!r}.")
        self._unsubscribe(subscription)
        return self

    def _forget(self, subscription):
        """Drops a subscription from the handle's books."""
        with self._lock:
            key = _subscription_key(subscription.stream, subscription.params)
            if self._subscriptions.get(key) is subscription:
                del self._subscriptions[key]
            subscription.active = False
        self._pump.remove(subscription._number)

    def _unsubscribe(self, subscription):
        self._forget(subscription)
        self._feed.unsubscribe(subscription._number)

    def close(self):
        with self._lock:
            for subscription in self._subscriptions.values():
                subscription.active = False
            self._subscriptions.clear()
        super().close()

    def _ended(self, route):
        self._forget(route.subscription)
        self._feed.unsubscribe(route.subscription._number)
        error = route.error
        if error is None or self.closed:
            return
        if error.kind in ("http", "unsupported"):
            # The server refused this subscription; the others go on.
            refusal = errors.MastodonAPIError(
                "WebSocket streaming subscription failed", error.status, str(error)
            )
            # Mastodon.py tells every listener of the handle: the refused
            # subscription's, the others', and the handle's own.
            for dispatcher in self._pump.dispatchers(route.dispatcher, self._default):
                dispatcher.websocket_error(refusal, route.dispatcher.for_stream)
        else:
            self._broken = True
            self.error = error
            for dispatcher in (route.dispatcher, self._default):
                if dispatcher is not None:
                    self._pump.abort_once(dispatcher, error)

    def _threadproc(self):
        try:
            while not self.closed:
                batch = self._pump.next_batch()
                if batch is None:
                    return
                try:
                    ended = self._pump.handle(batch)
                except Exception as err:  # noqa: BLE001 - as Mastodon.py's WebSocket does
                    # A listener raised: Mastodon.py reports it to every
                    # listener as a broken connection, then reconnects or
                    # ends. Here the connection is fine: with reconnect the
                    # next events follow, else the handle ends.
                    if isinstance(err, (errors.MastodonMalformedEventError, errors.MastodonNetworkError)):
                        error = err
                    else:
                        error = errors.MastodonNetworkError("WebSocket streaming connection failed.", str(err))
                    self._pump.abort_all(error)
                    if not self.reconnect:
                        self.error = error
                        return
                    # What ended earlier in the batch is still seen to.
                    ended = self._pump.take_ended()
                for route in ended:
                    self._ended(route)
                if self._broken and not self._pump.live_routes():
                    return
        finally:
            self.running = False
            self._feed.close()
