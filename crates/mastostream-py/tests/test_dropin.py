"""use_engine: an existing mastodon.Mastodon streams through the engine."""

import mastodon
import pytest
from conftest import in_thread, status

import mastostream


class Done(Exception):
    pass


class Listener(mastodon.StreamListener):
    def __init__(self):
        super().__init__()
        self.got = []

    def on_update(self, status):
        self.got.append(status)
        raise Done()


def test_an_existing_mastodon_instance_streams_through_the_engine(server):
    api = mastodon.Mastodon(api_base_url=server.url, access_token=server.token, version_check_mode="none")
    assert mastostream.use_engine(api) is api
    assert api.stream_public.__self__ is api.mastostream
    listener = Listener()

    def publish():
        server.wait_subscribed(["public"])
        server.publish("update", status(5))

    thread, _ = in_thread(publish)
    with pytest.raises(Done):
        api.stream_public(listener)  # the caller's code, unchanged
    thread.join(10)
    assert isinstance(listener.got[0], mastodon.return_types.Status)
    assert listener.got[0].id == "100005" or listener.got[0].id == 100005
    # Only this instance changed.
    other = mastodon.Mastodon(api_base_url=server.url, access_token=server.token, version_check_mode="none")
    assert not hasattr(other, "mastostream")
    assert api.stream_healthy() is True
