"""Streams as iterators: ``async for event in client.stream("public")`` (or
plain ``for``). Events come as :class:`StreamEvent`; with ``lifecycle=True``
also :class:`Notice` items (connected, reconnecting, skipped, lagged)."""

import asyncio
import collections

from . import entities, errors
from .lifecycle import open_feed


class StreamEvent:
    """One event: its ``name``, its ``payload`` (parsed when first read, as
    Mastodon.py's listeners would get it), the ``raw`` text the server sent,
    and whether it was ``caught_up`` (fetched back after an outage)."""

    __slots__ = ("name", "raw", "caught_up", "_payload", "_parsed", "_cast")

    def __init__(self, name, raw, caught_up, cast=entities.cast):
        self._cast = cast
        self.name = name
        self.raw = raw
        self.caught_up = caught_up
        self._parsed = False
        self._payload = None

    @property
    def payload(self):
        if not self._parsed:
            self._payload = self._cast(self.name, self.raw)
            self._parsed = True
        return self._payload

    def __repr__(self):
        return f"<StreamEvent {self.name} {self.raw[:60] if self.raw else None!r}>"


class Notice:
    """A change of the connection: ``kind`` is ``"connecting"``,
    ``"connected"``, ``"reconnecting"`` (``error``, ``delay``), ``"skipped"``
    (``error``: a malformed event passed over), ``"lagged"`` (``lost``) or
    ``"heartbeat"``."""

    __slots__ = ("kind", "error", "delay", "lost")

    def __init__(self, kind, error=None, delay=None, lost=None):
        self.kind = kind
        self.error = error
        self.delay = delay
        self.lost = lost

    def __repr__(self):
        return f"<Notice {self.kind}>"


class EventIterator:
    """The items of one stream; ``close()`` (or leaving ``async with`` /
    ``with``) ends it."""

    def __init__(self, engine, name, params, heartbeats=False, lifecycle=False, cast=entities.cast):
        self._cast = cast
        self._feed = open_feed(engine)
        self._feed.subscribe(name, params)
        self._heartbeats = heartbeats
        self._lifecycle = lifecycle
        self._pending = collections.deque()
        self._done = False
        # asyncio: whether a request to the engine is out, and the future
        # of the task now waiting for it (a cancelled wait leaves the
        # request out; the next wait takes it over).
        self._requested = False
        self._waiter = None

    def close(self):
        self._done = True
        self._feed.close()

    def _take(self):
        """The next item to hand out from the pending ones, or None."""
        while self._pending:
            item = self._pending.popleft()
            kind = item[1]
            if kind == "event":
                return StreamEvent(item[2], item[3], item[4], self._cast)
            if kind == "end":
                self.close()
                if item[2] is not None:
                    raise errors.from_engine(item[2])
                return None
            if kind == "heartbeat":
                if self._heartbeats:
                    return Notice("heartbeat")
            elif self._lifecycle:
                if kind == "reconnecting":
                    return Notice(kind, error=errors.from_engine(item[4]), delay=item[3])
                if kind == "skipped":
                    return Notice(kind, error=errors.from_engine(item[2]))
                if kind == "lagged":
                    return Notice(kind, lost=item[2])
                return Notice(kind)
        return None

    # Blocking iteration.

    def __iter__(self):
        return self

    def __next__(self):
        while True:
            item = self._take()
            if item is not None:
                return item
            if self._done:
                raise StopIteration
            batch = self._feed.next(None)
            if batch is None:
                raise StopIteration
            self._pending.extend(batch)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # asyncio: the engine calls back when items arrive; no thread waits.

    def __aiter__(self):
        return self

    async def __anext__(self):
        while True:
            item = self._take()
            if item is not None:
                return item
            if self._done:
                raise StopAsyncIteration
            loop = asyncio.get_running_loop()
            self._waiter = loop.create_future()
            if not self._requested:
                self._request(loop)
            if not await self._waiter:
                raise StopAsyncIteration

    def _request(self, loop):
        self._requested = True

        def settle(batch):
            self._requested = False
            if batch is None:
                self._done = True
            else:
                self._pending.extend(batch)
            waiter = self._waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(batch is not None)

        def deliver(batch):
            try:
                loop.call_soon_threadsafe(settle, batch)
            except RuntimeError:
                pass  # the loop is closed: nobody is waiting any more

        self._feed.next_async(deliver)

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        self.close()

    async def aclose(self):
        self.close()
