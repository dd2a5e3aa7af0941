"""Soak: 200 concurrent streams, random faults and disposals; afterwards nothing is left behind."""

from __future__ import annotations

import asyncio
import gc
import random
import warnings
from typing import Any

from conftest import rxllm_tasks, rxllm_tasks_finish
from fault_server import ROLE, FaultServer, Step, chat_chunk, in_stream_error, text_stream

from rxllm.errors import RxLLMError
from rxllm.events import Final, TextDelta
from rxllm.messages import Message
from rxllm.providers.openai import OpenAIChat
from rxllm.request import CompletionRequest
from rxllm.retry import Backoff
from rxllm.timeouts import Timeouts

STREAMS = 200
TEXTS = [f"w{i} " for i in range(20)]


def faults(rng: random.Random) -> list[Step]:
    whole = text_stream(*TEXTS)
    return [
        Step(pieces=whole),
        Step(pieces=whole, delay=0.005),
        Step(pieces=whole, bytewise=True),
        Step(drop_at_once=True),
        Step(pieces=whole[:5], ending="drop"),
        Step(pieces=[ROLE], ending="drop"),
        Step(status=503, body=b'{"error": {"message": "busy"}}'),
        Step(status=429, headers={"retry-after": "0"}, body=b"slow down"),
        Step(status=401, body=b'{"error": {"message": "no"}}'),
        Step(pieces=[*whole[:3], b"data: {broken\n\n"]),
        Step(pieces=whole[:4], ending="stall", stall=5),
        Step(pieces=whole[:2], ending="ping", delay=0.02),
        Step(pieces=[ROLE, in_stream_error("Overloaded", "overloaded_error")]),
        Step(pieces=[*whole[:6], in_stream_error("boom", "server_error")]),
        Step(pieces=whole, first_delay=rng.uniform(0, 0.2)),
        Step(pieces=[chat_chunk({"content": "x" * 5000})]),
    ]


async def test_soak() -> None:
    rng = random.Random(5)
    steps = faults(rng)
    server = FaultServer([], choose=lambda _index: rng.choice(steps))
    await server.start()
    loop = asyncio.get_running_loop()
    loop_errors: list[str] = []
    loop.set_exception_handler(lambda _loop, context: loop_errors.append(str(context.get("message"))))
    provider = OpenAIChat(
        "m",
        base_url=server.base_url,
        backoff=Backoff(initial=0.005, maximum=0.02),
        timeouts=Timeouts(first_event=3, idle=0.3),
        max_event_size=4096,
    )
    request = CompletionRequest([Message.user("hi")])
    outcomes: list[Any] = [None] * STREAMS
    events: list[list[Any]] = [[] for _ in range(STREAMS)]
    finished = [asyncio.Event() for _ in range(STREAMS)]
    disposed: set[int] = set()

    def start(i: int) -> Any:
        def on_error(error: Exception) -> None:
            outcomes[i] = error
            finished[i].set()

        def on_completed() -> None:
            outcomes[i] = "completed"
            finished[i].set()

        return provider.stream(request).subscribe(events[i].append, on_error, on_completed)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        subscriptions = [start(i) for i in range(STREAMS)]
        for i in rng.sample(range(STREAMS), 40):
            loop.call_later(rng.uniform(0, 0.3), _dispose, i, subscriptions, disposed, finished)
        await asyncio.wait_for(asyncio.gather(*(event.wait() for event in finished)), 45)
        await rxllm_tasks_finish()  # the disposed streams' tasks close their connections as they end

        session = provider._http.owned_session()
        assert session is not None
        connector = session.connector
        assert connector is not None
        assert not connector._acquired, "no connection is still held by a stream"
        await provider.aclose()
        assert session.closed
        assert rxllm_tasks() == [], "no rxllm task is pending"
        await server.close()
        await asyncio.wait_for(server.all_closed.wait(), 5)
        gc.collect()
        await asyncio.sleep(0)

    texts = "".join(TEXTS)
    kinds = {"completed": 0, "error": 0, "disposed": 0}
    for i in range(STREAMS):
        outcome = outcomes[i]
        got = "".join(event.text for event in events[i] if isinstance(event, TextDelta))
        assert texts.startswith(got), f"stream {i}: lost, duplicated or reordered text: {got!r}"
        if outcome == "completed":
            kinds["completed"] += 1
            assert got == texts and isinstance(events[i][-1], Final)
        elif i in disposed and outcome is None:
            kinds["disposed"] += 1
        else:
            kinds["error"] += 1
            assert isinstance(outcome, RxLLMError), f"stream {i}: {outcome!r}"
            assert not any(isinstance(event, Final) for event in events[i])
    assert sum(kinds.values()) == STREAMS
    assert min(kinds.values()) > 0, kinds
    messages = [str(w.message) for w in caught] + loop_errors
    assert not [m for m in messages if "Unclosed" in m or "destroyed" in m or "never awaited" in m], messages
    assert loop_errors == []
    assert server.request_count >= STREAMS - len(disposed)


def _dispose(i: int, subscriptions: list[Any], disposed: set[int], finished: list[asyncio.Event]) -> None:
    if not finished[i].is_set():
        disposed.add(i)
        subscriptions[i].dispose()
        finished[i].set()
