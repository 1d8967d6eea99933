"""Blocking stream calls with listeners, as Mastodon.py users write them."""

import threading
import time

import mastodon
import pytest
from conftest import Server, fixture, in_thread, status

import mastostream
from mastostream import (
    CallbackStreamListener,
    MastodonIllegalArgumentError,
    MastodonMalformedEventError,
    MastodonNetworkError,
    MastodonReadTimeout,
    StreamingClient,
    StreamListener,
)


class Done(Exception):
    """Raised by a listener to leave the blocking call."""


class Recorder(mastodon.StreamListener):
    """Mastodon.py's own listener class, subclassed as its users do."""

    def __init__(self, stop_after):
        super().__init__()
        self.stop_after = stop_after
        self.calls = []
        self.any = []
        self.aborts = []
        self.heartbeats = 0

    def _record(self, *call):
        self.calls.append(call)
        if len(self.calls) == self.stop_after:
            raise Done()

    def on_update(self, status):
        self._record("update", status)

    def on_delete(self, status_id):
        self._record("delete", status_id)

    def on_notification(self, notification):
        self._record("notification", notification)

    def on_status_update(self, status):
        self._record("status_update", status)

    def on_filters_changed(self):
        self._record("filters_changed")

    def on_announcement(self, announcement):
        self._record("announcement", announcement)

    def on_unknown_event(self, name, unknown_event=None):
        self._record("unknown", name, unknown_event)

    def on_any_event(self, name, data=None):
        self.any.append(name)

    def on_abort(self, err):
        self.aborts.append(err)

    def handle_heartbeat(self):
        self.heartbeats += 1


def client(server, **options):
    return StreamingClient(server.url, access_token=server.token, **options)


def publish_when_subscribed(server, stream, events):
    """In a thread: once the server holds the subscription, publishes the
    events to it. If one is not delivered the connection is cut, so that
    the blocking call under test ends instead of waiting for it."""
    def run():
        server.wait_subscribed(stream)
        target = stream if len(stream) > 1 else stream[0]
        for event, payload in events:
            if server.publish(event, payload, stream=target) < 1:
                server.fault(kind="disconnect")
                raise AssertionError(f"{event} was not delivered to {stream}")
    return in_thread(run)


def test_mastodon_py_listener_gets_its_own_entities_through_the_user_stream(server):
    # (filters_changed is not here: Mastodon 4.6 sends no event without a
    # payload, and the test server says so; see the 4.1 test below.)
    listener = Recorder(stop_after=5)
    notification = fixture("notification")
    announcement = fixture("announcement")
    thread, box = publish_when_subscribed(server, ["user"], [
        ("update", status(1)),
        ("notification", notification),
        ("delete", "100001"),
        ("status.update", status(1)),
        ("announcement", announcement),
    ])
    with pytest.raises(Done):
        client(server).stream_user(listener)
    thread.join(10)
    assert "error" not in box, box.get("error")
    kinds = [call[0] for call in listener.calls]
    assert kinds == ["update", "notification", "delete", "status_update", "announcement"]
    update = listener.calls[0][1]
    # Mastodon.py's own classes, with attribute and key access.
    assert isinstance(update, mastodon.return_types.Status)
    assert update.content == "<p>post 1</p>" and update["account"]["acct"] == "alice"
    assert update.account.acct == "alice"
    assert isinstance(listener.calls[1][1], mastodon.return_types.Notification)
    assert listener.calls[1][1].type == notification["type"]
    assert str(listener.calls[2][1]) == "100001"
    assert listener.calls[3][1].content == "<p>post 1</p>"
    assert isinstance(listener.calls[4][1], mastodon.return_types.Announcement)
    # on_any_event comes first, with the raw names.
    assert listener.any == ["update", "notification", "delete", "status.update", "announcement"]
    assert listener.aborts == []


def test_filters_changed_without_a_payload_calls_the_handler_without_arguments():
    server = Server(flavor="mastodon-4.1")
    try:
        listener = Recorder(stop_after=1)
        thread, box = publish_when_subscribed(server, ["user"], [("filters_changed", None)])
        with pytest.raises(Done):
            client(server).stream_user(listener)
        thread.join(10)
        assert "error" not in box, box.get("error")
        assert listener.calls == [("filters_changed",)]
    finally:
        server.stop()


def test_unknown_events_go_to_on_unknown_event(server):
    listener = Recorder(stop_after=1)
    thread, _ = publish_when_subscribed(server, ["public"], [("quux.happened", {"a": [1, {"b": 2}]})])
    with pytest.raises(Done):
        client(server).stream_public(listener)
    thread.join(10)
    name, payload = listener.calls[0][1], listener.calls[0][2]
    assert name == "quux.happened"
    assert payload["a"][1]["b"] == 2 and payload.a[1].b == 2


def test_callback_listener_from_mastodon_py_and_ours(server):
    for callback_class in (mastodon.CallbackStreamListener, CallbackStreamListener):
        seen = []

        def update(status):
            seen.append(("update", status.content))

        def local_update(status):
            seen.append(("local", status.account.acct))

        def delete(status_id):
            seen.append(("delete", str(status_id)))
            raise Done()

        listener = callback_class(update_handler=update, local_update_handler=local_update,
                                  delete_handler=delete)
        thread, _ = publish_when_subscribed(server, ["public:local"], [
            ("update", status(1, acct="bob")),
            ("update", status(2, acct="carol@elsewhere.example")),
            ("delete", "100001"),
        ])
        with pytest.raises(Done):
            client(server).stream_public(listener, local=True)
        thread.join(10)
        server.wait_idle()
        assert seen == [("update", "<p>post 1</p>"), ("local", "bob"), ("update", "<p>post 2</p>"),
                        ("delete", "100001")], callback_class


def test_a_plain_object_is_a_listener(server):
    class Plain:
        def __init__(self):
            self.got = []

        def on_update(self, status):
            self.got.append(status.id)
            raise Done()

    listener = Plain()
    thread, _ = publish_when_subscribed(server, ["hashtag", "rust"], [("update", status(7))])
    with pytest.raises(Done):
        client(server).stream_hashtag("rust", listener)
    thread.join(10)
    assert listener.got == ["100007"]


def test_heartbeats_reach_handle_heartbeat(server):
    listener = Recorder(stop_after=1)
    original = listener.handle_heartbeat

    def heartbeat():
        original()
        if listener.heartbeats == 2:
            raise Done()

    listener.handle_heartbeat = heartbeat
    with pytest.raises(Done):
        client(server).stream_direct(listener)


def test_arguments_are_checked_as_mastodon_py_checks_them(server):
    c = client(server)
    with pytest.raises(MastodonIllegalArgumentError):
        c.stream_hashtag("#rust", StreamListener())
    with pytest.raises(MastodonIllegalArgumentError):
        c.stream_public(StreamListener(), local=True, remote=True)
    assert issubclass(MastodonIllegalArgumentError, mastodon.errors.MastodonIllegalArgumentError)


def test_a_refused_token_raises_without_on_abort(server):
    listener = Recorder(stop_after=1)
    c = StreamingClient(server.url, access_token="wrong")
    with pytest.raises(MastodonNetworkError) as raised:
        c.stream_user(listener)
    assert raised.value.status == 401
    assert "wrong" not in str(raised.value)
    assert listener.aborts == []
    # Mastodon.py's own class: existing `except` clauses catch it.
    assert isinstance(raised.value, mastodon.errors.MastodonNetworkError)


def test_a_broken_connection_calls_on_abort_then_raises(server):
    listener = Recorder(stop_after=100)

    def break_it():
        server.wait_subscribed(["public"])
        server.publish("update", status(1))
        server.fault(kind="disconnect")

    thread, _ = in_thread(break_it)
    with pytest.raises(MastodonNetworkError) as raised:
        client(server).stream_public(listener)
    thread.join(10)
    assert [call[0] for call in listener.calls] == ["update"]
    assert listener.aborts == [raised.value]


def test_a_malformed_event_calls_on_abort_and_raises(server):
    listener = Recorder(stop_after=100)

    def send_bad():
        server.wait_subscribed(["public"])
        server.fault(kind="raw", bytes='event: update\ndata: {"id": "1", "content": \n\n')

    thread, _ = in_thread(send_bad)
    with pytest.raises(MastodonMalformedEventError) as raised:
        client(server).stream_public(listener)
    thread.join(10)
    assert listener.aborts == [raised.value]


def test_json_that_is_not_a_whole_status_still_reaches_on_update(server):
    # Mastodon.py casts whatever JSON an update carries; the engine checks
    # only the JSON (its entities are built on demand, and Python never asks).
    listener = Recorder(stop_after=1)

    def send_partial():
        server.wait_subscribed(["public"])
        server.fault(kind="raw", bytes='event: update\ndata: {"id": "1", "content": "<p>x</p>"}\n\n')

    thread, _ = in_thread(send_partial)
    with pytest.raises(Done):
        client(server).stream_public(listener)
    thread.join(10)
    assert [call[0] for call in listener.calls] == ["update"]
    assert listener.calls[0][1]["id"] == "1"
    assert listener.calls[0][1]["content"] == "<p>x</p>"
    assert listener.aborts == []


def test_timeout_is_the_read_timeout(server):
    # Over the WebSocket, which probes a silent server with pings; over SSE
    # the engine raises timeouts below 20 s to 20 s (Mastodon's heartbeat
    # comes every 15 s, so shorter would take a quiet stream for dead).
    listener = Recorder(stop_after=100)

    def stall():
        server.wait_subscribed(["public"])
        server.fault(kind="stall", seconds=30)

    thread, _ = in_thread(stall)
    started = time.monotonic()
    with pytest.raises(MastodonReadTimeout):
        client(server, transport="websocket").stream_public(listener, timeout=1.5)
    assert time.monotonic() - started < 10
    assert len(listener.aborts) == 1


def test_stream_healthy(server):
    assert client(server).stream_healthy() is True


def test_a_handler_exception_closes_the_connection(server):
    listener = Recorder(stop_after=1)
    thread, _ = publish_when_subscribed(server, ["public"], [("update", status(1))])
    with pytest.raises(Done):
        client(server).stream_public(listener)
    thread.join(10)
    server.wait_idle()


def test_the_token_is_not_in_reprs(server):
    c = client(server)
    assert server.token not in repr(c)
    assert server.token not in repr(c.engine())
    assert mastostream.__version__


def test_plain_entities_are_attribute_dicts_even_with_mastodon_py(server):
    listener = Recorder(stop_after=2)
    thread, _ = publish_when_subscribed(server, ["public"], [("update", status(1)), ("delete", "100001")])
    with pytest.raises(Done):
        client(server, entities="plain").stream_public(listener)
    thread.join(10)
    update = listener.calls[0][1]
    assert type(update) is mastostream.AttribDict and type(update.account) is mastostream.AttribDict
    assert update.account.acct == "alice" and update["content"] == "<p>post 1</p>"
    assert listener.calls[1][1] == "100001"
    with pytest.raises(MastodonIllegalArgumentError):
        client(server, entities="fancy")


def test_a_stream_the_server_ends_returns_none_without_on_abort(server):
    listener = Recorder(stop_after=100)

    def end_it():
        server.wait_subscribed(["public"])
        try:
            server.fault(kind="end")  # the response's last chunk
        except Exception:
            server.fault(kind="disconnect")  # the call under test must end either way
            raise

    thread, _ = in_thread(end_it)
    assert client(server).stream_public(listener) is None
    thread.join(10)
    assert listener.aborts == []
