"""Every server of the compatibility matrix, as the test server emulates it."""

import queue

import pytest
from conftest import Server, status

from mastostream import StreamingClient, StreamListener

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
