"""Without Mastodon.py: our own listener classes, entities and exceptions."""

import json
import subprocess
import sys
import textwrap

from conftest import status


def test_the_package_works_without_mastodon_py(server):
    # A child process in which `import mastodon` fails, as where it is not installed.
    script = textwrap.dedent(f"""
        import json, sys
        sys.modules["mastodon"] = None
        import mastostream
        from mastostream import StreamingClient, StreamListener, errors, entities
        assert not errors.FROM_MASTODON_PY and not entities.MASTODON_PY_ENTITIES

        class Done(Exception):
            pass

        class Listener(StreamListener):
            def on_update(self, status):
                self.status = status
            def on_delete(self, status_id):
                self.deleted = status_id
                raise Done()

        listener = Listener()
        print("streaming", flush=True)
        try:
            StreamingClient({server.url!r}, access_token={server.token!r}).stream_public(listener)
        except Done:
            pass
        s = listener.status
        try:
            StreamingClient({server.url!r}, access_token="wrong").stream_user(StreamListener())
        except mastostream.MastodonNetworkError as err:
            refused = [type(err).__name__, err.status, isinstance(err, IOError)]
        print(json.dumps({{
            "type": type(s).__name__,
            "attr": s.account.acct,
            "key": s["account"]["acct"],
            "nested": type(s.account).__name__,
            "deleted": listener.deleted,
            "refused": refused,
        }}))
    """)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "streaming"
        server.wait_subscribed(["public"])
        server.publish("update", status(1, acct="dora"), stream="public")
        server.publish("delete", "100001", stream="public")
        report = json.loads(child.stdout.readline())
        assert child.wait(timeout=10) == 0
    finally:
        child.kill()
    assert report == {
        "type": "AttribDict",
        "attr": "dora",
        "key": "dora",
        "nested": "AttribDict",
        "deleted": "100001",
        "refused": ["MastodonNetworkError", 401, True],
    }
