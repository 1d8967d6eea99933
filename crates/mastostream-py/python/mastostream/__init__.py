"""mastostream: Mastodon.py's streaming interface on the mastostream engine.

    from mastostream import StreamingClient, StreamListener

    class Printer(StreamListener):
        def on_update(self, status):
            print(status.account.acct, status.content)

    client = StreamingClient("https://mastodon.example", access_token=TOKEN)
    client.stream_hashtag("rust", Printer())   # blocks, as in Mastodon.py

Or keep Mastodon.py and swap the engine: ``mastostream.use_engine(api)``.
"""

from ._native import __version__
from .client import Mastodon, StreamingClient
from .dropin import use_engine
from .entities import AttribAccessDict, AttribDict
from .errors import (
    MastodonAPIError,
    MastodonError,
    MastodonIllegalArgumentError,
    MastodonMalformedEventError,
    MastodonNetworkError,
    MastodonReadTimeout,
    StreamingConfigError,
)
from .events import EventIterator, Notice, StreamEvent
from .handles import StreamHandle, WebSocketStreamHandle, WebSocketSubscription
from .listener import CallbackStreamListener, StreamListener

__all__ = [
    "__version__",
    "AttribAccessDict",
    "AttribDict",
    "CallbackStreamListener",
    "EventIterator",
    "Mastodon",
    "MastodonAPIError",
    "MastodonError",
    "MastodonIllegalArgumentError",
    "MastodonMalformedEventError",
    "MastodonNetworkError",
    "MastodonReadTimeout",
    "Notice",
    "StreamEvent",
    "StreamHandle",
    "StreamListener",
    "StreamingClient",
    "StreamingConfigError",
    "WebSocketStreamHandle",
    "WebSocketSubscription",
    "use_engine",
]
