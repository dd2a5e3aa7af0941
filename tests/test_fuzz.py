"""Property tests: chunking never changes the events; arbitrary bytes or JSON only ever give RxLLMError.

The pure pipe (SSE decoder ─► parse_chunk ─► accumulate_tool_calls ─► dedupe_final)
runs synchronously over many examples; a few examples go over real HTTP to
check that the event loop survives whatever the server sends.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import pytest
import reactivex
from conftest import collect_events
from fault_server import DONE, ROLE, Ending, FaultServer, Step, chat_chunk
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rxllm.errors import RxLLMError
from rxllm.messages import Message
from rxllm.operators import accumulate_tool_calls, dedupe_final, parse_chunk
from rxllm.providers._anthropic_messages import AnthropicMessagesDialect
from rxllm.providers._openai_chat import OpenAIChatDialect
from rxllm.providers._openai_responses import OpenAIResponsesDialect
from rxllm.providers.openai import OpenAIChat
from rxllm.request import CompletionRequest
from rxllm.retry import Backoff
from rxllm.sse import SseDecoder, SseEvent
from rxllm.typing import Dialect

DIALECTS: list[Dialect] = [OpenAIChatDialect(), AnthropicMessagesDialect(), OpenAIResponsesDialect()]


def run_pipe(
    dialect: Dialect, pieces: list[bytes], *, max_event_size: int = 1 << 20
) -> tuple[list[Any], Any]:
    """Events and the terminal (``None`` for completion) of the pure pipe over ``pieces``."""
    decoder = SseDecoder(max_event_size=max_event_size)
    decoded: list[SseEvent] = []
    source: reactivex.Observable[SseEvent]
    try:
        for piece in pieces:
            decoded += decoder.feed(piece)
        decoded += decoder.finish()
        source = reactivex.from_iterable(decoded)
    except RxLLMError as error:
        # As sse_source does: the events decoded before the error, then the error.
        source = reactivex.concat(reactivex.from_iterable(decoded), reactivex.throw(error))
    out: list[Any] = []
    terminal: list[Any] = []
    source.pipe(parse_chunk(dialect), accumulate_tool_calls(), dedupe_final()).subscribe(
        out.append, terminal.append, lambda: terminal.append(None)
    )
    assert len(terminal) == 1, "exactly one terminal, synchronously: no hang"
    return out, terminal[0]


def _without_minted_ids(events: list[Any]) -> list[Any]:
    """Tool calls without ids get rxllm-minted ids, unique per run: compare the rest."""
    result = []
    for event in events:
        data = msgspec.to_builtins(event)
        if isinstance(data, dict):
            data.pop("internal_call_id", None)
            for key in ("id", "call_id"):
                if isinstance(data.get(key), str) and data[key].startswith(("call_", "rx_")):
                    data[key] = "minted"
        result.append(data)
    return result


def chunkings(data: bytes) -> st.SearchStrategy[list[bytes]]:
    """Every way to cut ``data`` into consecutive pieces (empty pieces included)."""
    return st.lists(st.integers(0, len(data)), max_size=30).map(
        lambda cuts: [data[a:b] for a, b in zip([0, *sorted(cuts)], [*sorted(cuts), len(data)], strict=True)]
    )


texts = st.text(min_size=1, max_size=12)


@st.composite
def openai_streams(draw: st.DrawFn) -> bytes:
    pieces = [ROLE]
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["text", "reasoning", "tool", "comment"]))
        if kind == "text":
            pieces.append(chat_chunk({"content": draw(texts)}))
        elif kind == "reasoning":
            pieces.append(chat_chunk({"reasoning_content": draw(texts)}))
        elif kind == "tool":
            index = draw(st.integers(0, 2))
            call = {"index": index, "id": f"call_{index}", "function": {"name": "f", "arguments": ""}}
            pieces.append(chat_chunk({"tool_calls": [call]}))
            args = msgspec.json.encode({"q": draw(texts)}).decode()
            cut = draw(st.integers(0, len(args)))
            for part in (args[:cut], args[cut:]):
                pieces.append(chat_chunk({"tool_calls": [{"index": index, "function": {"arguments": part}}]}))
        else:
            pieces.append(b": keep-alive\r\n\r\n")
    pieces.append(chat_chunk({}, draw(st.sampled_from(["stop", "tool_calls", "length"]))))
    pieces.append(DONE)
    line_end = draw(st.sampled_from([b"\n", b"\r\n", b"\r"]))
    return b"".join(pieces).replace(b"\n", line_end) if line_end != b"\n" else b"".join(pieces)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_chunking_gives_the_same_events(data: st.DataObject) -> None:
    stream = data.draw(openai_streams())
    pieces = data.draw(chunkings(stream))
    whole_events, whole_end = run_pipe(OpenAIChatDialect(), [stream])
    events, end = run_pipe(OpenAIChatDialect(), pieces)
    assert whole_end is None, whole_end
    assert end is None, end
    assert _without_minted_ids(events) == _without_minted_ids(whole_events)


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
@settings(max_examples=150, deadline=None)
@given(pieces=st.lists(st.binary(max_size=64), max_size=12))
def test_arbitrary_bytes_give_only_rxllm_errors(dialect: Dialect, pieces: list[bytes]) -> None:
    _events, end = run_pipe(dialect, pieces, max_event_size=256)
    assert end is None or isinstance(end, RxLLMError), repr(end)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)

# Objects shaped like each provider's chunks, with arbitrary values in the fields the dialects read.
shaped = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(
            [
                "message_start",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop",
                "error",
                "ping",
                "response.output_text.delta",
                "response.function_call_arguments.delta",
                "response.output_item.added",
                "response.output_item.done",
                "response.completed",
                "response.failed",
                "response.incomplete",
            ]
        )
        | json_values,
        "choices": json_values,
        "delta": json_values,
        "usage": json_values,
        "error": json_values,
        "message": json_values,
        "index": json_values,
        "content_block": json_values,
        "item": json_values,
        "response": json_values,
        "output_index": json_values,
    },
)


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
@settings(max_examples=200, deadline=None)
@given(
    chunks=st.lists(st.one_of(json_values, shaped), max_size=8),
    names=st.lists(st.sampled_from(["message", "error", "message_start", "content_block_delta", "ping"])),
)
def test_arbitrary_json_gives_only_rxllm_errors(
    dialect: Dialect, chunks: list[Any], names: list[str]
) -> None:
    pieces = []
    for i, chunk in enumerate(chunks):
        name = names[i] if i < len(names) else "message"
        pieces.append(f"event: {name}\n".encode() + b"data: " + msgspec.json.encode(chunk) + b"\n\n")
    _events, end = run_pipe(dialect, pieces)
    assert end is None or isinstance(end, RxLLMError), repr(end)


# -- over HTTP: whatever the server sends, a typed end and a healthy loop -----------------------------


async def _over_http(pieces: list[bytes], ending: Ending) -> Any:
    server = FaultServer([Step(pieces=pieces, ending=ending)])
    await server.start()
    try:
        async with OpenAIChat(
            "m", base_url=server.base_url, backoff=Backoff(initial=0.001, maximum=0.001)
        ) as chat:
            result = await collect_events(chat.stream(CompletionRequest([Message.user("hi")])), timeout=10)
        await asyncio.sleep(0)  # the loop still runs
        return result
    finally:
        await server.close()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pieces=st.lists(
        st.binary(max_size=40) | st.sampled_from([ROLE, DONE, b"data: {\n\n", b"\xff\n\n"]), max_size=6
    ),
    ending=st.sampled_from(["end", "drop"]),
)
def test_arbitrary_bytes_over_http(pieces: list[bytes], ending: Ending) -> None:
    result = asyncio.run(_over_http(pieces, ending))
    assert result.completed or isinstance(result.error, RxLLMError), repr(result.error)
