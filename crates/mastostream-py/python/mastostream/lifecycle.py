"""Feeds are closed at interpreter exit, before Python finalizes: a thread
still waiting in the engine then would be killed inside Rust code (a hard
abort) rather than return. Closing wakes every waiter within 50 ms, and the
handles' worker threads, and any thread still inside the engine, are given
that long to leave."""

import atexit
import threading
import time
import weakref

from ._native import waiting

_feeds = weakref.WeakSet()
_lock = threading.Lock()


def open_feed(engine):
    """A new feed of ``engine``, closed at exit if still open."""
    feed = engine.feed()
    with _lock:
        _feeds.add(feed)
    return feed


@atexit.register
def _close_all():
    with _lock:
        feeds = list(_feeds)
    for feed in feeds:
        feed.close()
    for thread in threading.enumerate():
        if thread.name == "mastostream" and thread is not threading.current_thread():
            thread.join(0.2)
    # Threads of the user's own still waiting in the engine leave it within
    # one wait slice of the close.
    deadline = time.monotonic() + 0.5
    while waiting() and time.monotonic() < deadline:
        time.sleep(0.01)
