"""run_async=True handles: close(), is_alive(), is_receiving(), reconnects."""

import queue
import threading
import time

import mastodon
from conftest import status

from mastostream import StreamingClient


class Collect(mastodon.StreamListener):
    def __init__(self):
        super().__init__()
        self.events = queue.Queue()
        self.aborts = queue.Queue()

    def on_update(self, status):
        self.events.put(status.content)

    def on_abort(self, err):
        self.aborts.put(err)


def engine_threads():
    return [t for t in threading.enumerate() if t.name == "mastostream"]


def test_handle_streams_in_the_background_and_closes_promptly(server):
    listener = Collect()
    c = StreamingClient(server.url, access_token=server.token)
    handle = c.stream_public(listener, run_async=True)
    server.wait_subscribed(["public"])
    for n in range(3):
        server.publish("update", status(n))
    got = [listener.events.get(timeout=10) for _ in range(3)]
    assert got == ["<p>post 0</p>", "<p>post 1</p>", "<p>post 2</p>"]
    assert handle.is_alive()
    assert handle.is_receiving()
    started = time.monotonic()
    handle.close()
    took = time.monotonic() - started
    assert took < 0.1, f"close() took {took:.3f} s"
    assert not handle.is_alive()
    assert not handle.is_receiving()
    assert engine_threads() == []
    server.wait_idle()  # the socket is gone too


def test_reconnect_async_reconnects_after_the_wait(server):
    listener = Collect()
    c = StreamingClient(server.url, access_token=server.token)
    handle = c.stream_public(listener, run_async=True, reconnect_async=True, reconnect_async_wait_sec=0.2)
    try:
        server.wait_subscribed(["public"])
        server.fault(kind="disconnect")
        error = listener.aborts.get(timeout=10)
        assert isinstance(error, mastodon.errors.MastodonNetworkError)
        # The server signals the new subscription; then events flow again.
        server.wait_subscribed(["public"])
        server.publish("update", status(9))
        assert listener.events.get(timeout=10) == "<p>post 9</p>"
        assert handle.is_alive()
    finally:
        handle.close()
    assert not handle.is_alive()


def test_without_reconnect_a_break_ends_the_handle(server):
    listener = Collect()
    c = StreamingClient(server.url, access_token=server.token)
    # Mastodon.py raises the error in the worker thread; keep pytest's
    # thread-exception hook quiet about it.
    seen = []
    old_hook = threading.excepthook
    threading.excepthook = lambda args: seen.append(args.exc_value)
    try:
        handle = c.stream_public(listener, run_async=True)
        server.wait_subscribed(["public"])
        server.fault(kind="disconnect")
        listener.aborts.get(timeout=10)
        handle.join(10)
        assert not handle.is_alive()
        assert isinstance(handle.error, mastodon.errors.MastodonNetworkError)
        assert seen == [handle.error]
    finally:
        threading.excepthook = old_hook
        handle.close()


def test_a_refused_stream_goes_to_on_abort_and_ends_the_handle(server):
    listener = Collect()
    c = StreamingClient(server.url, access_token="wrong")
    handle = c.stream_user(listener, run_async=True, reconnect_async=True, reconnect_async_wait_sec=0.1)
    error = listener.aborts.get(timeout=10)
    assert error.status == 401
    handle.join(10)
    assert not handle.is_alive()


def test_catch_up_delivers_what_was_missed(server):
    listener = Collect()
    c = StreamingClient(server.url, access_token=server.token, catch_up=True)
    handle = c.stream_public(listener, run_async=True, reconnect_async=True, reconnect_async_wait_sec=1)
    try:
        server.wait_subscribed(["public"])
        server.publish("update", status(1))
        assert listener.events.get(timeout=10) == "<p>post 1</p>"
        server.fault(kind="disconnect")
        listener.aborts.get(timeout=10)
        # Published while nobody is subscribed: only the timeline has it
        # (stamped now: catch-up fetches what is newer than the outage).
        server.wait_idle()
        assert server.publish("update", status(2), stamp="live") == 0
        server.wait_subscribed(["public"])
        assert listener.events.get(timeout=10) == "<p>post 2</p>"
    finally:
        handle.close()


def test_a_raising_handler_with_reconnect_async_loses_nothing(server):
    # Mastodon.py's handle, on a handler raising one of these with
    # reconnect_async, drops the connection and opens another: what the
    # old one had brought is lost. This handle keeps the connection.
    published = threading.Event()

    class Raising(Collect):
        def on_update(self, status):
            super().on_update(status)
            if status.content == "<p>post 1</p>":
                # Post 2 is on its way on this connection before we raise.
                published.wait(10)
                raise mastodon.errors.MastodonNetworkError("handler bug")

    listener = Raising()
    c = StreamingClient(server.url, access_token=server.token)
    handle = c.stream_public(listener, run_async=True, reconnect_async=True, reconnect_async_wait_sec=0.1)
    try:
        server.wait_subscribed(["public"])
        assert server.publish("update", status(1)) == 1
        assert server.publish("update", status(2)) == 1
        published.set()
        got = [listener.events.get(timeout=10) for _ in range(2)]
        assert got == ["<p>post 1</p>", "<p>post 2</p>"]
        assert handle.is_alive()
        # Still the first connection: the server never saw a second one.
        assert len(server.connections()) == 1
        assert listener.aborts.empty()
    finally:
        handle.close()


def test_close_from_a_handler_ends_the_handle_and_nothing_follows(server):
    # The "stop after N events" pattern: close() from the listener, with
    # more of the batch read. The worker ends (it once spun for ever on
    # the items left) and no handler runs after close().
    holder = {}

    class StopAtFirst(Collect):
        def on_update(self, status):
            super().on_update(status)
            holder["handle"].close()

    listener = StopAtFirst()
    c = StreamingClient(server.url, access_token=server.token)
    handle = c.stream_public(listener, run_async=True, reconnect_async=True, reconnect_async_wait_sec=0.1)
    holder["handle"] = handle
    server.wait_subscribed(["public"])
    for n in range(5):
        server.publish("update", status(n))
    assert listener.events.get(timeout=10) == "<p>post 0</p>"
    handle.join(5)
    assert not handle.is_alive()
    assert listener.events.empty()
