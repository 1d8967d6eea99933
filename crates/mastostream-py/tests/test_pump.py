"""The pump that hands a feed's items to listeners, fed items directly:
what a closing handle, a raising handler and a lagging listener leave."""

import json

import pytest

from mastostream import MastodonNetworkError
from mastostream.pump import Pump, Route


class Recorder:
    def __init__(self, pump=None, raise_on=None, close_on=None):
        self.updates = []
        self.aborts = []
        self._pump = pump
        self._raise_on = raise_on
        self._close_on = close_on

    def on_update(self, status):
        self.updates.append(status["id"])
        if status["id"] == self._close_on:
            self._pump.closed = True
        if status["id"] == self._raise_on:
            raise RuntimeError("handler bug")

    def on_abort(self, error):
        self.aborts.append(error)


def update(subscription, n):
    return (subscription, "event", "update", json.dumps({"id": str(n), "content": ""}))


def pump_with(*listeners):
    pump = Pump(feed=None)
    routes = []
    for number, listener in enumerate(listeners):
        route = Route(listener, None, cast=lambda name, raw: json.loads(raw))
        pump.add(number, route)
        routes.append(route)
    return pump, routes


def test_nothing_is_dispatched_once_closed_not_even_what_was_read():
    listener = Recorder(close_on="2")
    pump, _ = pump_with(listener)
    listener._pump = pump
    pump.handle([update(0, 1), update(0, 2), update(0, 3), update(0, 4)])
    assert listener.updates == ["1", "2"]
    # What is left is nobody's: a handle's loop must not wait on it (it
    # spun for ever on items that would never be dispatched).
    assert not pump.has_pending()


def test_a_route_that_ended_before_a_raising_handler_is_not_lost():
    ended_one, raising = Recorder(), Recorder(raise_on="5")
    pump, routes = pump_with(ended_one, raising)
    with pytest.raises(RuntimeError):
        pump.handle([(0, "end", None), update(1, 5), update(1, 6)])
    assert pump.take_ended() == [routes[0]]
    # The rest of the batch goes on, and the ended route is not told twice.
    assert pump.handle([]) == []
    assert raising.updates == ["5", "6"]


def test_events_dropped_for_a_slow_listener_are_told_to_on_abort():
    listener = Recorder()
    pump, _ = pump_with(listener)
    pump.handle([update(0, 1), (0, "lagged", 37), update(0, 2)])
    assert listener.updates == ["1", "2"]
    [error] = listener.aborts
    assert isinstance(error, MastodonNetworkError)
    assert "37 events were dropped" in str(error)
