"""Soak of mid-stream resends: 200 concurrent streams through random faults, ``midstream_retries=2``.

Every request names its stream, so the server knows which fault it served to
which stream and in what order; each attempt streams text of its own. Every
stream must end with the complete text of its good attempt (after its last
``StreamReset``) or with the typed error of its last attempt: never a silent
truncation. The event log must show exactly one ``StreamReset`` per resend.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import msgspec
from conftest import rxllm_tasks_finish
from fault_server import FaultServer, Step, in_stream_error, text_stream

from rxllm.errors import (
    AuthenticationError,
    BadRequestError,
    ChunkDecodeError,
    InternalServerError,
    OverloadedError,
    RxLLMError,
    StreamTimeoutError,
    StreamTruncatedError,
    TransportError,
)
from rxllm.events import Final, StreamReset, TextDelta
from rxllm.messages import Message
from rxllm.providers.openai import OpenAIChat
from rxllm.request import CompletionRequest
from rxllm.retry import Backoff
from rxllm.timeouts import Timeouts

STREAMS = 200
MIDSTREAM_RETRIES = 2
MAX_RETRIES = 2
WORDS = 12

# Fault kinds, their weights, and what a stream ending on them delivers.
MIDSTREAM = {
    "drop": StreamTruncatedError,
    "truncated": StreamTruncatedError,
    "malformed": ChunkDecodeError,
    "stall": StreamTimeoutError,
    "overloaded": OverloadedError,
}
BEFORE_FIRST_EVENT = {"503": InternalServerError, "refused": TransportError}
FATAL = {"invalid": BadRequestError, "401": AuthenticationError}
WEIGHTS = {
    "ok": 40,
    "drop": 12,
    "truncated": 8,
    "malformed": 8,
    "stall": 4,
    "overloaded": 10,
    "503": 8,
    "refused": 4,
    "invalid": 3,
    "401": 3,
}


def words(stream: int, attempt: int) -> list[str]:
    return [f"s{stream}a{attempt}w{k} " for k in range(WORDS)]


def reply(kind: str, stream: int, attempt: int, rng: random.Random) -> Step:
    whole = text_stream(*words(stream, attempt))
    cut = rng.randint(2, WORDS)  # the role chunk and at least one word, never the end
    partial = whole[:cut]
    match kind:
        case "ok":
            return Step(pieces=whole, delay=rng.choice([0.0, 0.002]))
        case "drop":
            return Step(pieces=partial, ending="drop")
        case "truncated":
            return Step(pieces=partial)
        case "malformed":
            return Step(pieces=[*partial, b'data: {"choices": [{"delta": \n\n'])
        case "stall":
            return Step(pieces=partial, ending="stall", stall=5)
        case "overloaded":
            return Step(pieces=[*partial, in_stream_error("Overloaded", "overloaded_error")])
        case "503":
            return Step(status=503, body=b'{"error": {"message": "busy", "type": "server_error"}}')
        case "refused":
            return Step(drop_at_once=True)
        case "invalid":
            return Step(pieces=[*partial, in_stream_error("bad request", "invalid_request_error")])
        case "401":
            return Step(status=401, body=b'{"error": {"message": "bad key"}}')
    raise AssertionError(kind)


@dataclass
class Stream:
    served: list[str] = field(default_factory=list)
    events: list[Any] = field(default_factory=list)
    outcome: Exception | str | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)


REASONS = {
    "drop": "connection lost mid-stream",
    "truncated": "stream ended without its end marker",
    "malformed": "malformed chunk",
    "stall": "idle timeout",
    "overloaded": "overloaded_error in the stream",
}


def expected_resets(served: list[str]) -> list[tuple[int, str]]:
    """``(attempt, reason)`` of each resend: every mid-stream fault followed by another request.

    ``attempt`` is the number of the request that follows (the stream's first is 1).
    """
    return [(number + 1, REASONS[kind]) for number, kind in enumerate(served[:-1], 1) if kind in MIDSTREAM]


async def test_soak_midstream() -> None:
    rng = random.Random(8)
    streams = [Stream() for _ in range(STREAMS)]
    kinds, weights = list(WEIGHTS), list(WEIGHTS.values())
    server: FaultServer

    def choose(index: int) -> Step:
        stream = int(msgspec.json.decode(server.requests[index].body)["messages"][0]["content"])
        served = streams[stream].served
        kind = rng.choices(kinds, weights)[0]
        served.append(kind)
        return reply(kind, stream, len(served), rng)

    server = FaultServer([], choose=choose)
    await server.start()
    provider = OpenAIChat(
        "m",
        base_url=server.base_url,
        max_retries=MAX_RETRIES,
        midstream_retries=MIDSTREAM_RETRIES,
        backoff=Backoff(initial=0.005, maximum=0.02),
        timeouts=Timeouts(first_event=5, idle=0.3),
    )
    started = time.monotonic()

    def subscribe(number: int) -> None:
        stream = streams[number]

        def on_error(error: Exception) -> None:
            stream.outcome = error
            stream.done.set()

        def on_completed() -> None:
            stream.outcome = "completed"
            stream.done.set()

        request = CompletionRequest([Message.user(str(number))])
        provider.stream(request).subscribe(stream.events.append, on_error, on_completed)

    for number in range(STREAMS):
        subscribe(number)
    await asyncio.wait_for(asyncio.gather(*(stream.done.wait() for stream in streams)), 50)
    elapsed = time.monotonic() - started
    await rxllm_tasks_finish()  # every stream's last task has closed its connection
    session = provider._http.owned_session()
    assert session is not None and session.connector is not None
    assert not session.connector._acquired, "no connection is still held by a stream"
    await provider.aclose()
    await server.close()

    outcomes: Counter[str] = Counter()
    resets = 0
    for number, stream in enumerate(streams):
        served, events = stream.served, stream.events
        where = f"stream {number}, served {served}"
        got_resets = [event for event in events if isinstance(event, StreamReset)]
        assert [(reset.attempt, reset.reason) for reset in got_resets] == expected_resets(served), (
            f"{where}: one StreamReset per resend"
        )
        resets += len(got_resets)
        last = events.index(got_resets[-1]) + 1 if got_resets else 0
        assert not any(isinstance(event, Final) for event in events[:last]), (
            f"{where}: a failed attempt's Final"
        )
        after = events[last:]
        text = "".join(event.text for event in after if isinstance(event, TextDelta))
        good = "".join(words(number, len(served)))
        if stream.outcome == "completed":
            outcomes["completed"] += 1
            assert served[-1] == "ok", where
            assert text == good, f"{where}: the complete text of the good attempt, {text!r}"
            assert isinstance(events[-1], Final) and sum(isinstance(e, Final) for e in events) == 1, where
        else:
            error = stream.outcome
            assert isinstance(error, RxLLMError), f"{where}: {error!r}"
            kind = served[-1]
            expected = {**MIDSTREAM, **BEFORE_FIRST_EVENT, **FATAL}[kind]
            assert type(error) is expected, f"{where}: {error!r}"
            assert good.startswith(text), f"{where}: what arrived is a prefix of the last attempt's text"
            assert not any(isinstance(event, Final) for event in events), where
            if kind in MIDSTREAM:
                outcomes["resends spent"] += 1
                assert sum(1 for k in served if k in MIDSTREAM) == 1 + MIDSTREAM_RETRIES, where
            elif kind in BEFORE_FIRST_EVENT:
                outcomes["retries spent"] += 1
                assert sum(1 for k in served if k in BEFORE_FIRST_EVENT) == 1 + MAX_RETRIES, where
            else:
                outcomes["not retryable"] += 1
    assert sum(outcomes.values()) == STREAMS
    served_kinds = Counter(kind for stream in streams for kind in stream.served)
    assert server.request_count == sum(served_kinds.values())
    assert outcomes["completed"] and outcomes["resends spent"] and outcomes["not retryable"], outcomes
    print(
        f"\nmid-stream soak: {STREAMS} streams, {server.request_count} requests in {elapsed:.1f} s; "
        f"{resets} StreamResets; outcomes {dict(outcomes)}; faults served {dict(served_kinds)}"
    )
