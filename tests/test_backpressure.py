"""Backpressure through every bridge: a slow consumer stops the socket being read.

A server floods a stream of 2 KiB deltas (tens of megabytes, far more than the
socket buffers hold). The consumer takes a few events and stops; the server
side then says whether it was held back (its writes stall) or could write it
all (nothing was bounded). The number of events the source delivered is
counted just upstream of the consumer.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from flood_server import flood_server
from reactivex import Observable
from reactivex import operators as ops

import rxllm
from rxllm import CompletionRequest, Hook, Message, PauseControl, TextDelta, Timeouts
from rxllm.control import DEFAULT_BACKLOG
from rxllm.operators._agent import HOOK_BACKLOG
from rxllm.providers.openai import OpenAIChat

REQUEST = CompletionRequest([Message.user("Flood me")])
DELTAS = 20_000  # 40 MiB of text
# What one read can hand over after the consumer is full: aiohttp's buffer up to its high-water mark
# (twice the 64 KiB read_bufsize) plus one socket read of asyncio's (256 KiB), and one write's worth.
PIECE_EVENTS = (2 * 64 + 256) * 1024 // 2048 + 16


def counted(observable: Observable[Any], count: list[int]) -> Observable[Any]:
    def add(_event: Any) -> None:
        count[0] += 1

    return observable.pipe(ops.do_action(on_next=add))


async def test_aiter_with_a_consumer_that_stops_holds_a_bounded_number_and_stops_reading() -> None:
    count = [0]
    async with flood_server(DELTAS) as server, OpenAIChat("m", base_url=server.base_url) as provider:
        stream = rxllm.aiter(counted(provider.stream(REQUEST), count))
        for _ in range(200):
            await stream.__anext__()
        # The consumer holds the iterator but takes nothing more.
        assert await server.outcome() == "stalled"
        assert count[0] <= 200 + DEFAULT_BACKLOG + PIECE_EVENTS
        await stream.aclose()
        await asyncio.wait_for(server.left.wait(), 10)


async def test_aiter_resumes_reading_as_the_consumer_takes_events_and_loses_none() -> None:
    async with flood_server(DELTAS // 4) as server, OpenAIChat("m", base_url=server.base_url) as provider:
        texts: list[str] = []
        async for event in rxllm.aiter(provider.stream(REQUEST), max_buffered=8):
            if isinstance(event, TextDelta):
                texts.append(event.text)
            if len(texts) == 100:
                # Wait for the server to be held back before taking the rest.
                assert await server.outcome() == "stalled"
        assert [int(text[:8]) for text in texts] == list(range(DELTAS // 4))


def test_iterate_stops_reading_while_the_script_does_not_take_events() -> None:
    count = [0]
    outcome: list[str] = []

    async def serve(ready: threading.Event, done: threading.Event) -> None:
        async with flood_server(DELTAS) as server:
            urls.append(server.base_url)
            ready.set()
            outcome.append(await server.outcome())
            told.set()
            await asyncio.to_thread(done.wait, 60)

    urls: list[str] = []
    ready, told, done = threading.Event(), threading.Event(), threading.Event()
    serving = threading.Thread(target=asyncio.run, args=(serve(ready, done),))
    serving.start()
    assert ready.wait(10)
    provider = OpenAIChat("m", base_url=urls[0])
    try:
        for taken, _event in enumerate(rxllm.iterate(counted(provider.stream(REQUEST), count)), 1):
            if taken == 50:
                assert told.wait(60)  # the server's verdict, from its own thread
                break
    finally:
        done.set()
        serving.join(30)
    assert outcome == ["stalled"]
    assert count[0] <= 50 + DEFAULT_BACKLOG + PIECE_EVENTS


class SlowHook(Hook):
    """Holds the run at the tenth text delta until released."""

    def __init__(self) -> None:
        self.seen = 0
        self.release = asyncio.Event()
        self.held = asyncio.Event()

    async def on_text_delta(self, delta: str, aggregated: str) -> None:
        self.seen += 1
        if self.seen == 10:
            self.held.set()
            await self.release.wait()


class Counting:
    """A ``StreamModel`` counting the events its provider delivers into the agent."""

    def __init__(self, provider: OpenAIChat) -> None:
        self.provider = provider
        self.count = [0]

    def stream(self, request: CompletionRequest, *, pause: PauseControl | None = None) -> Observable[Any]:
        return counted(self.provider.stream(request, pause=pause), self.count)


async def test_a_slow_hook_throttles_the_turns_source_and_the_idle_limit_does_not_count_it() -> None:
    async with flood_server(DELTAS) as server:
        provider = OpenAIChat("m", base_url=server.base_url, timeouts=Timeouts(idle=1.0))
        async with provider:
            model = Counting(provider)
            hook = SlowHook()

            async def last() -> Any:
                events = [
                    event async for event in rxllm.aiter(rxllm.Agent(model).stream_prompt("go", hook=hook))
                ]
                return events[-1]

            run = asyncio.ensure_future(last())
            await asyncio.wait_for(hook.held.wait(), 10)
            assert await server.outcome() == "stalled"
            assert model.count[0] <= 10 + HOOK_BACKLOG + PIECE_EVENTS
            # The condition under test, not a synchronisation: the run stays held for longer than
            # the idle limit, and a slow consumer is no stalled server.
            await asyncio.sleep(1.5)
            hook.release.set()
            final = await asyncio.wait_for(run, 60)
    assert final.text.startswith("00000000")
    assert hook.seen == DELTAS
