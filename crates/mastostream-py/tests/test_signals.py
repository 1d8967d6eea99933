"""Ctrl-C ends a blocking call promptly."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from conftest import status


def test_ctrl_c_ends_a_blocking_call(server):
    script = textwrap.dedent(f"""
        import sys, time
        from mastostream import StreamingClient, StreamListener
        c = StreamingClient({server.url!r}, access_token={server.token!r})
        print("streaming", flush=True)
        try:
            c.stream_public(StreamListener())
        except KeyboardInterrupt:
            print("interrupted", flush=True)
            sys.exit(0)
        sys.exit(3)
    """)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "streaming"
        server.wait_subscribed(["public"])
        started = time.monotonic()
        os.kill(child.pid, signal.SIGINT)
        assert child.stdout.readline().strip() == "interrupted"
        assert child.wait(timeout=5) == 0
        assert time.monotonic() - started < 1.0
    finally:
        child.kill()
    server.wait_idle()


def test_waits_beyond_what_the_clock_holds_are_waits_without_end(server):
    from mastostream import StreamingClient

    feed = StreamingClient(server.url, access_token=server.token).engine().feed()
    try:
        # An SSE feed has no connection of its own to wait for.
        assert feed.wait_connected(float("inf")) is None
        assert feed.wait_connected(1e19) is None
        feed.subscribe("public", [])
        # The first items (connecting, connected) end the wait.
        assert feed.next(1e19)
        server.wait_subscribed(["public"])
        server.publish("update", status(1))
        # Beyond what a Duration holds, too.
        assert feed.next(1e20)
        with pytest.raises(ValueError):
            feed.next(float("nan"))
        with pytest.raises(ValueError):
            feed.next(-1.0)
    finally:
        feed.close()
