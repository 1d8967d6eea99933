"""Fixtures: a `mastostream serve` test server per test (or per flavour), and
helpers that talk to its control endpoints.

The server binary comes from MASTOSTREAM_BIN, which the Rust driver
(crates/mastostream-cli/tests/python_package.rs) sets; run by hand:

    MASTOSTREAM_BIN=target/debug/mastostream target/py-venv/bin/python -m pytest crates/mastostream-py/tests
"""

import copy
import json
import os
import pathlib
import subprocess
import threading
import urllib.request

import pytest

TOKEN = "python-test-token"

# Real Mastodon entities, from the repository's fixtures.
FIXTURES = pathlib.Path(__file__).resolve().parents[3] / "fixtures" / "entities"


def fixture(name):
    return json.loads((FIXTURES / f"{name}.json").read_text())


class Server:
    """One `mastostream serve` process on a free loopback port."""

    def __init__(self, flavor="mastodon", extra=()):
        binary = os.environ.get("MASTOSTREAM_BIN")
        if not binary or not os.path.exists(binary):
            pytest.fail(
                "MASTOSTREAM_BIN must name the mastostream binary (cargo build -p mastostream-cli); "
                "the Rust driver crates/mastostream-cli/tests/python_package.rs sets it"
            )
        self.process = subprocess.Popen(
            [binary, "serve", "--addr", "127.0.0.1:0", "--token", TOKEN, "--heartbeat-secs", "1",
             "--flavor", flavor, *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        first = self.process.stdout.readline().strip()
        if not first.startswith("listening on "):
            self.process.kill()
            pytest.fail(f"mastostream serve said {first!r}")
        self.url = first.split()[2].rstrip(";")
        self.token = TOKEN
        self._changes = 0

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()

    def _request(self, method, path, body=None, timeout=15):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.headers, json.loads(response.read() or b"null")

    def publish(self, event, payload, stream=None, stamp=None):
        """Delivers an event; returns how many subscriptions got it."""
        body = {"event": event, "payload": payload}
        if stream is not None:
            body["stream"] = stream
        if stamp is not None:
            body["stamp"] = stamp
        return self._request("POST", "/api/testkit/publish", body)[1]["delivered"]

    def fault(self, **fault):
        self._request("POST", "/api/testkit/faults", fault)

    def connections(self):
        headers, listing = self._request("GET", "/api/testkit/connections")
        self._changes = int(headers["x-testkit-changes"])
        return listing

    def wait_for(self, predicate, what, rounds=20):
        """Waits until predicate(connections) holds, on the server's change
        signal (each round waits up to 10 s for the next change)."""
        listing = self.connections()
        for _ in range(rounds):
            if predicate(listing):
                return listing
            headers, listing = self._request(
                "GET", f"/api/testkit/connections?changed_after={self._changes}")
            self._changes = int(headers["x-testkit-changes"])
        pytest.fail(f"the server never saw {what}: {listing}")

    def wait_subscribed(self, stream, count=1):
        """Waits until `count` subscriptions to `stream` (a list such as
        ["public"] or ["hashtag", "rust"]) are held."""
        def held(listing):
            return sum(c["streams"].count(stream) for c in listing) >= count
        return self.wait_for(held, f"{count} subscription(s) to {stream}")

    def wait_idle(self):
        return self.wait_for(lambda listing: not listing, "every connection closed")


@pytest.fixture
def server():
    s = Server()
    yield s
    s.stop()


_STATUS = fixture("status")


def status(n, acct="alice"):
    """A real status with id 100000+n, content "<p>post n</p>", by `acct`."""
    s = copy.deepcopy(_STATUS)
    s["id"] = str(100000 + n)
    s["content"] = f"<p>post {n}</p>"
    s["account"]["acct"] = acct
    s["account"]["username"] = acct.split("@")[0]
    return s


def in_thread(function, *args):
    """Runs function(*args) in a thread; returns (thread, box) where box
    holds its result or exception once the thread ends."""
    box = {}

    def run():
        try:
            box["result"] = function(*args)
        except BaseException as err:  # noqa: BLE001 - handed to the test
            box["error"] = err

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, box
