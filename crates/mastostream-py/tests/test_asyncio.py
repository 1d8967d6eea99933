"""The asyncio iterator and the blocking one."""

import asyncio

from conftest import in_thread, status

from mastostream import StreamEvent, StreamingClient


def test_async_for_gets_events_and_a_cancelled_wait_loses_none(server):
    c = StreamingClient(server.url, access_token=server.token)

    async def main():
        got = []
        async with c.stream("hashtag", tag="rust") as events:
            # Waits that are cancelled before anything arrives...
            for _ in range(3):
                try:
                    await asyncio.wait_for(events.__anext__(), 0.1)
                except asyncio.TimeoutError:
                    pass
            await asyncio.to_thread(server.wait_subscribed, ["hashtag", "rust"])
            await asyncio.to_thread(server.publish, "update", status(0), ["hashtag", "rust"])
            # ...neither lose nor hold back what comes next.
            first = await asyncio.wait_for(events.__anext__(), 10)
            got.append((first.name, first.payload.content, first.raw is not None))
            for n in range(1, 5):
                await asyncio.to_thread(server.publish, "update", status(n), ["hashtag", "rust"])
            async for event in events:
                assert isinstance(event, StreamEvent)
                got.append((event.name, event.payload.content, event.raw is not None))
                if len(got) == 5:
                    break
        return got

    got = asyncio.run(main())
    assert got == [("update", f"<p>post {n}</p>", True) for n in range(5)]
    server.wait_idle()


def test_the_iterator_reports_lifecycle_when_asked(server):
    c = StreamingClient(server.url, access_token=server.token)
    kinds = []
    with c.stream("public", lifecycle=True) as events:
        for item in events:
            kinds.append(getattr(item, "kind", None) or item.name)
            if kinds == ["connecting", "connected"]:
                thread, _ = in_thread(server.publish,
                                      "update", status(1), "public")
                thread.join(10)
            if "update" in kinds:
                break
    assert kinds[:2] == ["connecting", "connected"] and kinds[-1] == "update"
