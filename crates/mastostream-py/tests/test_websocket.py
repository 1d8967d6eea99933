"""stream_open_websocket: one connection, several subscriptions."""

import queue
import time

import mastodon
from conftest import status

from mastostream import MastodonIllegalArgumentError, StreamingClient, StreamListener
import pytest


class Tagged(StreamListener):
    def __init__(self):
        self.events = queue.Queue()
        self.errors = queue.Queue()

    def on_update(self, status, for_stream=None):
        self.events.put((status.content, for_stream))

    def on_websocket_error(self, error, for_stream=None):
        self.errors.put((error, for_stream))


def test_subscriptions_share_one_websocket_and_are_routed(server):
    c = StreamingClient(server.url, access_token=server.token)
    default = Tagged()
    rust = Tagged()
    handle = c.stream_open_websocket(default)
    try:
        handle.subscribe("hashtag", listener=rust, tag="rust")
        c.stream_public(default, local=True, websocket_handle=handle)
        server.wait_subscribed(["hashtag", "rust"])
        server.wait_subscribed(["public:local"])
        assert len(server.connections()) == 1
        server.publish("update", status(1), stream=["hashtag", "rust"])
        server.publish("update", status(2), stream="public:local")
        assert rust.events.get(timeout=10) == ("<p>post 1</p>", ["hashtag", "rust"])
        assert default.events.get(timeout=10) == ("<p>post 2</p>", ["public:local"])
        assert handle.is_receiving()
        with pytest.raises(MastodonIllegalArgumentError):
            handle.subscribe("hashtag", tag="Rust")  # already subscribed (case-insensitive)
        handle.unsubscribe("hashtag", tag="rust")
        server.wait_for(lambda listing: all(["hashtag", "rust"] not in c["streams"] for c in listing),
                        "the unsubscribe")
        assert [s.stream for s in handle.subscriptions()] == ["public:local"]
    finally:
        handle.close()
    assert not handle.is_alive()
    server.wait_idle()


def test_a_refused_subscription_goes_to_on_websocket_error_and_the_rest_go_on(server):
    c = StreamingClient(server.url, access_token=server.token)
    listener = Tagged()
    server.fault(kind="refuse_list", list="42")
    handle = c.stream_open_websocket(listener)
    try:
        c.stream_list("42", listener, websocket_handle=handle)
        c.stream_public(listener, websocket_handle=handle)
        error, for_stream = listener.errors.get(timeout=15)
        assert isinstance(error, mastodon.errors.MastodonAPIError)
        assert for_stream == ["list", "42"]
        server.wait_subscribed(["public"])
        server.publish("update", status(3), stream="public")
        assert listener.events.get(timeout=10) == ("<p>post 3</p>", ["public"])
        assert [s.stream for s in handle.subscriptions()] == ["public"]
        # The refused subscription is gone from the engine too.
        assert handle.is_receiving()
    finally:
        handle.close()


def test_a_raising_handler_on_the_websocket_is_reported_as_mastodon_py_reports_it(server):
    c = StreamingClient(server.url, access_token=server.token)

    class Raising(Tagged):
        def __init__(self):
            super().__init__()
            self.aborts = queue.Queue()

        def on_update(self, status, for_stream=None):
            super().on_update(status, for_stream)
            if status.content == "<p>post 1</p>":
                raise RuntimeError("handler bug")

        def on_abort(self, err):
            self.aborts.put(err)

    listener = Raising()
    # With reconnect, Mastodon.py reports the exception to on_abort as a
    # network error and goes on; so does this handle, losing nothing.
    handle = c.stream_open_websocket(listener, reconnect_async=True)
    try:
        handle.subscribe("public")
        server.wait_subscribed(["public"])
        server.publish("update", status(1), stream="public")
        server.publish("update", status(2), stream="public")
        error = listener.aborts.get(timeout=10)
        assert isinstance(error, mastodon.errors.MastodonNetworkError)
        assert "handler bug" in str(error)
        assert [listener.events.get(timeout=10)[0] for _ in range(2)] == ["<p>post 1</p>", "<p>post 2</p>"]
        assert handle.is_alive()
    finally:
        handle.close()


def test_an_open_websocket_without_subscriptions_is_receiving(server):
    c = StreamingClient(server.url, access_token=server.token)
    handle = c.stream_open_websocket(Tagged())
    try:
        server.wait_for(lambda listing: len(listing) == 1, "the WebSocket")
        # The server holds the connection; the client's state follows it at
        # once (the upgrade's answer), bounded here in case it does not.
        deadline = time.monotonic() + 10
        while not handle.is_receiving() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert handle.is_receiving()
    finally:
        handle.close()
    assert not handle.is_receiving()


def test_opening_a_websocket_with_a_refused_token_raises(server):
    c = StreamingClient(server.url, access_token="wrong")
    with pytest.raises(mastodon.errors.MastodonNetworkError) as raised:
        c.stream_open_websocket(Tagged())
    assert raised.value.status == 401
    assert "wrong" not in str(raised.value)
