"""The provider conformance scenarios a real server can produce, run against the real servers.

``tests/providers/test_conformance.py`` replays each provider's documented stream for a
provider-neutral turn. Here the turn comes from a real engine instead, and the same
checks run on it with that module's own ``Wire``, ``normalized``, ``final`` and
``whole``: a ``RealWire`` says what the real server sent (the ids it minted, the usage
it reported) where the scripted wire had constants. The scenarios:

* ``incomplete_at_the_length_limit``: text cut at max tokens, a real end of the turn;
* ``one_tool_call``: a forced call, its deltas, one whole ``ToolCall`` just before the ``Final``;
* ``usage_is_reported_in_full``;
* ``truncated_before_the_end_marker`` (before content): llama-cpp-python's empty overflow body.

Not here: a refusal, reasoning, parallel calls and in-stream errors, which this model
and these servers do not produce.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from conftest import Closing
from test_conformance import Call, Wire, deltas, final, normalized, whole

from real.endpoints import ENDPOINTS, Endpoint, Streamed
from real.endpoints import Call as SentCall
from real.servers import RunningServer
from real.turns import one_turn
from rxllm.errors import StreamTruncatedError
from rxllm.events import TextDelta, ToolCall, ToolCallDelta, Usage


@dataclass
class RealWire(Wire):
    """A ``Wire`` whose ids and usage are the ones a real server sent in one reply."""

    sent_calls: list[SentCall] = field(default_factory=list)
    reported: Usage | None = None

    def ids(self, index: int) -> tuple[str, str]:
        call = self.sent_calls[index]
        return call.id, call.call_id

    def usage(self) -> Usage | None:  # type: ignore[override]
        # None where the server reported none (Final.usage is Usage | None, issue 13).
        return self.reported


def real_wire(endpoint: Endpoint, sent: Streamed) -> RealWire:
    assert sent.response_id is not None and sent.model is not None
    return RealWire(
        name=endpoint.dialect,
        model=sent.model,
        response_id=sent.response_id,
        finish_reasons=endpoint.finish_reasons,
        reasoning_tokens=False,
        reasoning_block=False,
        error_type_code=(None, None),
        make=endpoint.make,
        sent_calls=sent.calls,
        reported=sent.usage,
    )


ALL = [pytest.param(e, id=e.id) for e in ENDPOINTS]


@pytest.mark.parametrize("endpoint", ALL)
async def test_incomplete_at_the_length_limit(
    endpoint: Endpoint, server: RunningServer, proxy: Any, closing: Closing
) -> None:
    result, sent, _ = await one_turn(endpoint, server, proxy, closing, endpoint.request("Once", max_tokens=8))
    assert result.completed, "a length cut is a real end of the turn"
    wire = real_wire(endpoint, sent)
    assert normalized(result.events, wire) == (
        [*(TextDelta(text=piece) for piece in sent.text), final(wire, "length")],
        [],
    )


@pytest.mark.parametrize("endpoint", ALL)
async def test_one_tool_call(endpoint: Endpoint, server: RunningServer, proxy: Any, closing: Closing) -> None:
    request = endpoint.request("Weather in Zürich?", max_tokens=64, tools=True)
    result, sent, _ = await one_turn(endpoint, server, proxy, closing, request)
    assert result.completed, result.error
    wire = real_wire(endpoint, sent)
    (sent_call,) = sent.calls
    call = Call(sent_call.name, sent_call.pieces)
    expected = deltas("#0", call)
    if endpoint.dialect == "openai-chat":
        # Chat Completions names the call on the fragment with its first arguments.
        expected = [
            ToolCallDelta(id="#0", internal_call_id="#0", name=call.name, arguments_delta=call.pieces[0]),
            *expected[2:],
        ]
    events, calls = normalized(result.events, wire)
    assert events == [*expected, final(wire, "tool_calls")]
    assert calls == [whole("#0", call, sent_call.arguments)]
    # Reported once, after its last argument piece and before the Final.
    (whole_call,) = [e for e in result.events if isinstance(e, ToolCall)]
    assert result.events.index(whole_call) == len(result.events) - 2


@pytest.mark.parametrize("endpoint", ALL)
async def test_usage_is_reported_in_full(
    endpoint: Endpoint, server: RunningServer, proxy: Any, closing: Closing
) -> None:
    result, sent, _ = await one_turn(endpoint, server, proxy, closing, endpoint.request("ok", max_tokens=8))
    wire = real_wire(endpoint, sent)
    end = result.events[-1]
    assert end.usage == wire.usage()
    if end.usage is not None:
        assert end.usage.total_tokens == end.usage.input_tokens + end.usage.output_tokens


async def test_truncated_before_the_end_marker(
    llama_cpp_python: RunningServer, proxy: Any, closing: Closing
) -> None:
    (endpoint,) = [e for e in ENDPOINTS if e.server == "llama_cpp_python"]
    # A prompt over the context: llama-cpp-python has sent 200 and its headers, then ends the body.
    result, sent, exchange = await one_turn(
        endpoint, llama_cpp_python, proxy, closing, endpoint.request("hello " * 5000, max_tokens=8)
    )
    assert exchange.response_body == b""
    assert normalized(result.events, real_wire(endpoint, Streamed(response_id="", model=""))) == ([], [])
    assert isinstance(result.error, StreamTruncatedError)
    url = result.error.url
    assert url is not None and url.endswith("/chat/completions")
    end = endpoint.make.dialect.end_of_turn
    assert str(result.error) == f"the {endpoint.dialect} stream ended before {end} [POST {url}]"
    assert sent == Streamed()
