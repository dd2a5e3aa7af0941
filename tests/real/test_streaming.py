"""One turn against each real server: text, usage, a forced tool call, ``collect_response``.

Every request goes through a recording proxy; the expectations are read from the bytes
the server sent (``real.endpoints.Streamed``), so each test says "rxllm reported exactly
what this server streamed".
"""

from __future__ import annotations

from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
from conftest import Closing, collect_events
from reactivex import operators as ops

from real.endpoints import ENDPOINTS, Endpoint, get_weather
from real.proxy import RecordingProxy
from real.servers import RunningServer
from real.turns import TIMEOUT, final_of, one_turn
from rxllm.events import Final, TextDelta, ToolCall, ToolCallDelta
from rxllm.operators import collect_response
from rxllm.response import CompletionResponse

TEXT_TOKENS, TOOL_TOKENS = 8, 64


async def test_text_is_exactly_what_the_server_streamed(
    endpoint: Endpoint, server: RunningServer, proxy: Any, closing: Closing
) -> None:
    result, sent, exchange = await one_turn(
        endpoint, server, proxy, closing, endpoint.request("Hello", max_tokens=TEXT_TOKENS)
    )
    final = final_of(result)
    assert exchange.status == 200
    assert sent.text, "the server streamed no text"
    assert [event for event in result.events if not isinstance(event, Final)] == [
        TextDelta(text=piece) for piece in sent.text
    ]
    assert (final.finish_reason, final.response_id, final.model) == (
        endpoint.finish_reasons["length"],
        sent.response_id,
        sent.model,
    )


USAGE_REPORTED = [pytest.param(e, id=e.id) for e in ENDPOINTS]


@pytest.mark.parametrize("endpoint", USAGE_REPORTED)
async def test_usage_is_exactly_what_the_server_reported(
    endpoint: Endpoint, server: RunningServer, proxy: Any, closing: Closing
) -> None:
    request = endpoint.request("How are you?", max_tokens=TEXT_TOKENS)
    await one_turn(endpoint, server, proxy, closing, request)  # the same prompt again hits the prompt cache
    result, sent, _ = await one_turn(endpoint, server, proxy, closing, request)
    final = final_of(result)
    assert final.usage == sent.usage
    if sent.usage is not None:
        # The server counted what it did: a turn cut at max tokens generated exactly that many,
        # and the prompt it had just seen came from its cache.
        assert sent.usage.output_tokens == TEXT_TOKENS
        assert 0 < sent.usage.cached_input_tokens < sent.usage.input_tokens


async def test_a_forced_tool_call_has_arguments_that_parse_and_validate(
    endpoint: Endpoint, server: RunningServer, proxy: Any, closing: Closing
) -> None:
    result, sent, _ = await one_turn(
        endpoint,
        server,
        proxy,
        closing,
        endpoint.request("Weather in Zürich?", max_tokens=TOOL_TOKENS, tools=True),
    )
    final = final_of(result)
    assert final.finish_reason == endpoint.finish_reasons["tool_calls"]
    (sent_call,) = sent.calls
    (call,) = [event for event in result.events if isinstance(event, ToolCall)]
    assert (call.id, call.call_id, call.name) == (sent_call.id, sent_call.call_id, "get_weather")
    assert isinstance(call.arguments, dict)
    assert call.arguments == sent_call.arguments
    jsonschema.validate(call.arguments, dict(get_weather.parameters))
    assert await get_weather.invoke(call.arguments) == get_weather(**call.arguments)
    deltas = [event for event in result.events if isinstance(event, ToolCallDelta)]
    assert "".join(delta.arguments_delta for delta in deltas) == "".join(sent_call.pieces)
    assert {delta.internal_call_id for delta in deltas} == {call.internal_call_id}
    assert [delta.name for delta in deltas] == ["get_weather"] + [None] * (len(deltas) - 1)


@pytest.mark.parametrize("tools", [False, True], ids=["text", "tool-call"])
async def test_collect_response_over_a_real_stream_equals_the_sum_of_its_deltas(
    endpoint: Endpoint, server: RunningServer, proxy: Any, closing: Closing, tools: bool
) -> None:
    recording: RecordingProxy = await proxy(server)
    provider = closing(endpoint.provider(recording.origin))
    request = endpoint.request(
        "Weather in Zürich?", max_tokens=TOOL_TOKENS if tools else TEXT_TOKENS, tools=tools
    )
    seen: list[Any] = []
    result = await collect_events(
        provider.stream(request).pipe(ops.do_action(seen.append), collect_response()), timeout=TIMEOUT
    )
    assert result.completed, result.error
    (response,) = result.events
    assert isinstance(response, CompletionResponse)
    final = seen[-1]
    assert isinstance(final, Final)
    assert response == CompletionResponse(
        text="".join(event.text for event in seen if isinstance(event, TextDelta)),
        tool_calls=tuple(event for event in seen if isinstance(event, ToolCall)),
        usage=final.usage,
        usage_complete=final.usage_complete,
        finish_reason=final.finish_reason,
        response_id=final.response_id,
        model=final.model,
    )
    assert bool(response.tool_calls) == tools and bool(response.text) == (not tools)
