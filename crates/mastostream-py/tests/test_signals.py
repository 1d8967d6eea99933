"""Ctrl-C ends a blocking call promptly."""

import os
import signal
import subprocess
import sys
import textwrap
import time


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
