"""Drives a feed's items into listeners: the loop behind the blocking calls,
the background handles and the WebSocket handle."""

import collections
import threading

from . import errors
from .listener import Dispatcher


class Route:
    """One subscription of a feed: its listener and what it has seen."""

    def __init__(self, listener, for_stream, subscription=None, cast=None):
        self.dispatcher = Dispatcher(listener, for_stream, cast)
        self.subscription = subscription
        self.connected_once = False
        self.ended = False
        self.error = None


class Pump:
    """Reads batches from a feed and calls each subscription's listener.

    ``on_abort`` is called as Mastodon.py calls it: when an established
    connection breaks or sends something malformed (once per listener per
    outage, also when the engine then reconnects), but not when the first
    connection is refused, which simply raises."""

    def __init__(self, feed):
        self.feed = feed
        self.routes = {}
        self.lock = threading.Lock()
        self.receiving = False
        self._aborted = set()
        # Items not yet dispatched: a handler that raises leaves the rest here.
        self._pending = collections.deque()
        # Routes that ended and were not yet handed back: a handler raising
        # later in the same batch leaves them here, not lost.
        self._ended = []
        # Set by a handle's close(): nothing more is dispatched.
        self.closed = False

    def add(self, subscription_id, route):
        with self.lock:
            self.routes[subscription_id] = route

    def remove(self, subscription_id):
        with self.lock:
            return self.routes.pop(subscription_id, None)

    def live_routes(self):
        with self.lock:
            return [r for r in self.routes.values() if not r.ended]

    def abort_once(self, dispatcher, error):
        """``on_abort(error)`` unless this listener was told since its last
        connection."""
        key = id(dispatcher.listener)
        if key not in self._aborted:
            self._aborted.add(key)
            dispatcher.abort(error)

    def dispatchers(self, *extra):
        """One dispatcher per distinct listener: the live routes', then
        ``extra`` (None entries skipped)."""
        seen = {}
        for dispatcher in [r.dispatcher for r in self.live_routes()] + list(extra):
            if dispatcher is not None:
                seen.setdefault(id(dispatcher.listener), dispatcher)
        return list(seen.values())

    def abort_all(self, error):
        """``on_abort(error)`` once for each listener."""
        for dispatcher in self.dispatchers():
            dispatcher.abort(error)

    def has_pending(self):
        """Whether a raising handler left items of the last batch (none
        count once closed: they will not be dispatched)."""
        return bool(self._pending) and not self.closed

    def next_batch(self):
        """The items to dispatch next: what a raising handler left of the
        last batch goes on at once, not when the next batch happens to
        come; else the feed's next batch (None once it is closed)."""
        return () if self.has_pending() else self.feed.next(None)

    def take_ended(self):
        """The routes that ended since last asked."""
        ended, self._ended = self._ended, []
        return ended

    def handle(self, batch):
        """Dispatches a batch (and what a raising handler left of the last
        one). Returns the routes that ended in it (see take_ended when a
        handler raised)."""
        pending = self._pending
        pending.extend(batch)
        ended = self._ended
        while pending and not self.closed:
            item = pending.popleft()
            route = self.routes.get(item[0])
            if route is None:  # unsubscribed meanwhile
                continue
            kind = item[1]
            if kind == "event":
                route.dispatcher.event(item[2], item[3])
            elif kind == "heartbeat":
                route.dispatcher.heartbeat()
            elif kind == "connected":
                route.connected_once = True
                self.receiving = True
                self._aborted.discard(id(route.dispatcher.listener))
            elif kind == "connecting":
                self.receiving = False
            elif kind == "reconnecting":
                self.receiving = False
                error = errors.from_engine(item[4])
                # Mastodon.py is silent about failed first connections and
                # about a stream the server ended normally.
                if route.connected_once and error.kind != "ended":
                    self.abort_once(route.dispatcher, error)
            elif kind == "skipped":
                # Passed over, nothing else lost; Mastodon.py would have
                # aborted and reconnected here.
                route.dispatcher.abort(errors.from_engine(item[2]))
            elif kind == "lagged":
                # The listener fell behind a shared WebSocket and the engine
                # dropped events rather than hold the others up: said, not
                # silent (Mastodon.py has no such case; on_abort is where it
                # reports what was lost).
                route.dispatcher.abort(errors.MastodonNetworkError(
                    f"{item[2]} events were dropped: the listener fell behind the stream"))
            elif kind == "end":
                route.ended = True
                self.receiving = False
                if item[2] is not None:
                    route.error = errors.from_engine(item[2])
                ended.append(route)
        return self.take_ended()
