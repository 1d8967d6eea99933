#!/usr/bin/env python3
"""mastodon_py_count.py - Mastodon.py peer client for the mastostream streaming benchmark.

The harness (crates/mastostream-bench) installs requirements.txt into a venv and runs

    python mastodon_py_count.py --server URL --token TOKEN --stream public --count N [--timeout SECS] [--verbose]
        [--engine mastodon.py|mastostream|mastostream-plain]

With --engine mastostream the same Mastodon instance and listener stream through the
mastostream Python package (mastostream.use_engine(api)), payloads still cast into
Mastodon.py's entity classes; with mastostream-plain into mastostream's attribute dicts
(entities="plain"), the package's cheap form. A Python handler per event either way.

timing the whole process (wall and CPU) against mastostream's own client.

It streams over SSE the way a Mastodon.py user would: Mastodon(api_base_url, access_token),
a StreamListener subclass and the blocking stream_public() / stream_user() / stream_hashtag() ...
call. Mastodon.py discovers the streaming URL from the instance endpoints, parses every payload
as usual (Status, Notification, ... objects), and in blocking mode never reconnects: a dropped
connection ends the run with a short count instead of hiding lost events.

Every event that reaches the listener counts (all on_xxx handlers, on_unknown_event included;
heartbeats and the ":)" greeting do not). The listener raises a private exception from the
handler of the N-th event, which unwinds out of the blocking stream call and closes the
connection, so exactly N are counted.

stdout: exactly one line {"client":"Mastodon.py <version>","events":N,"peak_rss_kib":K}; exit 0.
The harness reads peak_rss_kib (VmHWM) because the RSS from wait4 would include its own.
On any error, short count or timeout: message on stderr, exit 1.
--verbose: per-event-name and per-handler counts on stderr.

Streams: public, public:local, public:remote, public:media (and :local:media ...), user,
user:notification, direct, hashtag:NAME, hashtag:local:NAME, list:ID.
"""

import argparse
import collections
import json
import signal
import sys
from importlib.metadata import version

from mastodon import AttribAccessDict, Mastodon, StreamListener
from mastodon.return_types import Conversation, Notification, Status


class _Done(Exception):
    """Raised from the listener once the target count is reached."""


class _Timeout(Exception):
    """Raised by SIGALRM at --timeout (not an OSError, so no HTTP layer rewraps it)."""


class CountingListener(StreamListener):
    def __init__(self, target, plain=False):
        super().__init__()
        self.target = target
        self.plain = plain
        self.by_name = collections.Counter()  # raw event names, from on_any_event
        self.by_handler = collections.Counter()  # which on_xxx handler ran, and the payload's class

    def _count(self, handler, payload=None, expect=None):
        # Cheap check that Mastodon.py parsed the payload. Status payloads arrive as Status for
        # "update" but as a plain AttribAccessDict for "status.update" (Mastodon.py keys its type
        # table by "status_update"), so only attribute access is required of JSON objects.
        if expect is not None and self.plain and expect is not str and expect != (str, int):
            expect = dict  # attribute dicts, not Mastodon.py's classes
        if expect is not None and not isinstance(payload, expect):
            raise TypeError(f"{handler}: unparsed payload {payload!r:.200}")
        self.by_handler[f"{handler}({type(payload).__name__})"] += 1
        if sum(self.by_handler.values()) == self.target:
            raise _Done()

    # Called by Mastodon.py for every event (not heartbeats) before the specific handler.
    def on_any_event(self, name, data=None):
        self.by_name[name] += 1

    def on_update(self, status):
        self._count("on_update", status, Status)

    def on_status_update(self, status):
        self._count("on_status_update", status, AttribAccessDict)

    def on_delete(self, status_id):
        self._count("on_delete", status_id, (str, int))

    def on_notification(self, notification):
        self._count("on_notification", notification, Notification)

    def on_conversation(self, conversation):
        self._count("on_conversation", conversation, Conversation)

    def on_filters_changed(self):
        self._count("on_filters_changed")

    def on_notifications_merged(self):
        self._count("on_notifications_merged")

    def on_announcement(self, announcement):
        self._count("on_announcement", announcement, AttribAccessDict)

    def on_announcement_reaction(self, reaction):
        self._count("on_announcement_reaction", reaction, AttribAccessDict)

    def on_announcement_delete(self, announcement_id):
        self._count("on_announcement_delete", announcement_id)

    def on_encrypted_message(self, message):
        self._count("on_encrypted_message", message)

    def on_unknown_event(self, name, unknown_event=None):
        self._count("on_unknown_event", unknown_event)


def start_stream(api, spec, listener, timeout):
    """Blocking Mastodon.py stream call for a stream name as the harness spells it."""
    parts = spec.split(":")
    kind, flags = parts[0], set(parts[1:])
    if kind == "public" and flags <= {"local", "remote", "media"}:
        api.stream_public(listener, local="local" in flags, remote="remote" in flags,
                          only_media="media" in flags, timeout=timeout)
    elif spec == "user":
        api.stream_user(listener, timeout=timeout)
    elif spec == "user:notification":
        api.stream_user_notifications(listener, timeout=timeout)
    elif spec == "direct":
        api.stream_direct(listener, timeout=timeout)
    elif kind == "hashtag" and len(parts) >= 2:
        local = len(parts) == 3 and parts[1] == "local"
        api.stream_hashtag(parts[-1], listener, local=local, timeout=timeout)
    elif kind == "list" and len(parts) == 2:
        api.stream_list(parts[1], listener, timeout=timeout)
    else:
        raise ValueError(f"unsupported stream {spec!r}")


def peak_rss_kib():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def fail(message):
    print(f"mastodon_py_count: {message}", file=sys.stderr)
    sys.exit(1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--stream", default="public")
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--timeout", type=float, default=3600, help="whole-run limit in seconds")
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--engine", default="mastodon.py", choices=["mastodon.py", "mastostream", "mastostream-plain"])
    args = parser.parse_args()
    if args.count < 1:
        fail("--count must be at least 1")

    def on_alarm(signum, frame):
        raise _Timeout(f"timed out after {args.timeout:g}s")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, args.timeout)

    listener = CountingListener(args.count, plain=args.engine == "mastostream-plain")
    api = Mastodon(api_base_url=args.server, access_token=args.token, version_check_mode="none")
    client = f"Mastodon.py {version('Mastodon.py')}"
    if args.engine.startswith("mastostream"):
        import mastostream

        plain = args.engine == "mastostream-plain"
        mastostream.use_engine(api, entities="plain" if plain else "auto")
        entities = "attribute dicts" if plain else "Mastodon.py entities"
        client = f"mastostream {mastostream.__version__} (Mastodon.py {version('Mastodon.py')} listener, {entities})"
    try:
        # Returns only if the server ends the stream cleanly; errors raise.
        start_stream(api, args.stream, listener, timeout=min(args.timeout, 300))
    except _Done:
        pass
    except Exception as error:  # noqa: BLE001 - any failure is a failed run
        counted = sum(listener.by_handler.values())
        fail(f"{type(error).__name__}: {error} (after {counted} of {args.count} events)")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)

    events = sum(listener.by_handler.values())
    if args.verbose:
        print(f"mastodon_py_count: by event {dict(listener.by_name)}", file=sys.stderr)
        print(f"mastodon_py_count: by handler {dict(listener.by_handler)}", file=sys.stderr)
    if events != args.count:
        fail(f"stream ended after {events} of {args.count} events")
    if sum(listener.by_name.values()) != events:
        fail(f"on_any_event saw {sum(listener.by_name.values())} events but handlers {events}")
    report = {"client": client, "events": events, "peak_rss_kib": peak_rss_kib()}
    print(json.dumps(report, separators=(",", ":")))


if __name__ == "__main__":
    main()
