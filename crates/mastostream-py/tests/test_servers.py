"""Every server of the compatibility matrix, as the test server emulates it."""

import queue

import pytest
from conftest import Server, status

from mastostream import MastodonIllegalArgumentError, MastodonNetworkError, StreamingClient, StreamListener

# Servers without SSE are reached over the WebSocket by transport="auto".
FLAVOURS = ["mastodon", "mastodon-4.1", "glitch-soc", "pleroma", "akkoma", "gotosocial", "iceshrimp"]


class Collect(StreamListener):
    def __init__(self):
        self.events = queue.Queue()

    def on_update(self, status):
        self.events.put(status.content)


@pytest.mark.parametrize("flavor", FLAVOURS)
def test_public_and_user_streams_on_every_server(flavor):
    server = Server(flavor=flavor)
    try:
        c = StreamingClient(server.url, access_token=server.token, transport="auto")
        listener = Collect()
        handle = c.stream_user(listener, run_async=True, reconnect_async=True)
        try:
            server.wait_for(lambda listing: any(["user"] in conn["streams"] for conn in listing),
                            "the user subscription")
            server.publish("update", status(1), stream="user")
            assert listener.events.get(timeout=10) == "<p>post 1</p>"
        finally:
            handle.close()
    finally:
        server.stop()


def test_a_streaming_url_on_pleroma_needs_the_server_software_named():
    # Given a streaming URL, the engine does not ask the server what it runs;
    # Pleroma reads a WebSocket's token from the query or the protocol
    # header, never from Authorization, and refuses the user stream.
    server = Server(flavor="pleroma")
    try:
        options = dict(access_token=server.token, transport="websocket", streaming_url=server.url)
        with pytest.raises(MastodonNetworkError):
            StreamingClient(server.url, **options).stream_user(Collect())
        c = StreamingClient(server.url, server_software="pleroma", **options)
        listener = Collect()
        handle = c.stream_user(listener, run_async=True)
        try:
            server.wait_subscribed(["user"])
            server.publish("update", status(1), stream="user")
            assert listener.events.get(timeout=10) == "<p>post 1</p>"
        finally:
            handle.close()
        with pytest.raises(MastodonIllegalArgumentError, match="server_software"):
            StreamingClient(server.url, server_software="friendica", **options).stream_user(Collect())
    finally:
        server.stop()
