"""Structured output against real servers: llama.cpp's grammar makes even random weights answer valid JSON.

``CompletionRequest(output=City)`` goes through a recording proxy: the exact request is
checked, every ``PartialOutput`` must be a prefix of the final value, and ``Output`` is a
validated ``City``. The city's fields are bounded (literals, a list of literals) so the
grammar-constrained answer ends well within the token limit. Where a server does not do
structured output the way its API says, a named quirk test pins what it does instead.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec
import pytest
from conftest import Closing, collect_events
from reactivex import operators as ops

from real.endpoints import ENDPOINTS, Endpoint
from real.proxy import RecordingProxy
from real.servers import RunningServer
from real.turns import TIMEOUT
from rxllm import Agent, CompletionRequest, FinalResponse, Message, Output, PartialOutput, TextDelta
from rxllm.errors import InternalServerError, OutputValidationError
from rxllm.operators import parse_output
from rxllm.output import output_spec


class City(msgspec.Struct):
    name: Literal["Paris", "Rome", "Oslo"]
    population: int
    coastal: bool
    tags: list[Literal["old", "new"]]


CHAT, RESPONSES, MESSAGES, LLAMA_CPP_PYTHON = (
    next(e for e in ENDPOINTS if e.id == name)
    for name in (
        "llama-server/chat",
        "llama-server/responses",
        "llama-server/messages",
        "llama-cpp-python/chat",
    )
)


def request() -> CompletionRequest:
    return CompletionRequest(
        [Message.user("A city, please.")],
        preamble="Answer with the city as JSON.",
        output=City,
        temperature=0.0,
        max_tokens=200,
        params={"seed": 42},
    )


def is_prefix(partial: Any, whole: Any) -> bool:
    """Whether ``partial`` is what a prefix of ``whole``'s JSON parses to (open strings and containers)."""
    if isinstance(partial, dict) and isinstance(whole, dict):
        return set(partial) <= set(whole) and all(is_prefix(v, whole[k]) for k, v in partial.items())
    if isinstance(partial, list) and isinstance(whole, list):
        return len(partial) <= len(whole) and all(
            is_prefix(p, w) for p, w in zip(partial, whole, strict=False)
        )
    if isinstance(partial, str) and isinstance(whole, str):
        return whole.startswith(partial)
    return bool(partial == whole)


@pytest.mark.parametrize("endpoint", [pytest.param(CHAT, id=CHAT.id), pytest.param(MESSAGES, id=MESSAGES.id)])
async def test_a_structured_answer_streams_partial_objects_and_ends_a_validated_value(
    endpoint: Endpoint, llama_server: RunningServer, proxy: Any, closing: Closing
) -> None:
    recording: RecordingProxy = await proxy(llama_server)
    provider = closing(endpoint.provider(recording.origin))
    result = await collect_events(provider.stream(request()).pipe(parse_output(City)), timeout=TIMEOUT)
    assert result.completed, result.error
    (exchange,) = recording.exchanges
    body = exchange.request_json
    spec = output_spec(City)
    if endpoint is CHAT:
        assert body["response_format"] == {
            "type": "json_schema",
            "json_schema": {"name": "City", "schema": spec.wire_schema, "strict": True},
        }
    else:
        (answer_tool,) = body["tools"]
        assert (answer_tool["name"], answer_tool["input_schema"]) == ("final_answer", spec.schema)
        assert body["tool_choice"] == {"type": "tool", "name": "final_answer"}
    (output,) = [event for event in result.events if isinstance(event, Output)]
    assert isinstance(output.value, City)
    whole = msgspec.to_builtins(output.value)
    partials = [event.value for event in result.events if isinstance(event, PartialOutput)]
    assert len(partials) > 1, "the value grew as the JSON streamed"
    assert all(is_prefix(partial, whole) for partial in partials)
    assert all(a != b for a, b in zip(partials, partials[1:], strict=False)), "only changes are emitted"
    text = "".join(event.text for event in result.events if isinstance(event, TextDelta))
    assert msgspec.json.decode(text, type=City) == output.value


async def test_an_agent_with_an_output_type_ends_with_the_typed_value(
    llama_server: RunningServer, proxy: Any, closing: Closing
) -> None:
    recording: RecordingProxy = await proxy(llama_server)
    provider = closing(CHAT.provider(recording.origin))
    agent = Agent(provider, output=City, temperature=0.0, max_tokens=200, params={"seed": 42})
    run = await collect_events(agent.stream_prompt("A city, please.").pipe(ops.last()), timeout=TIMEOUT)
    assert run.completed, run.error
    (final,) = run.events
    assert isinstance(final, FinalResponse)
    assert isinstance(final.output, City)
    assert final.turns == 1 and len(recording.exchanges) == 1


async def test_llama_server_responses_ignores_text_format_and_answers_free_text(
    llama_server: RunningServer, proxy: Any, closing: Closing
) -> None:
    # Quirk: /v1/responses takes `text.format` json_schema without complaint and applies no grammar;
    # the random model's free text is then no City, and rxllm says so with the text it got.
    recording: RecordingProxy = await proxy(llama_server)
    provider = closing(RESPONSES.provider(recording.origin))
    result = await collect_events(provider.stream(request()).pipe(parse_output(City)), timeout=TIMEOUT)
    (exchange,) = recording.exchanges
    assert exchange.request_json["text"]["format"]["type"] == "json_schema"
    error = result.error
    assert type(error) is OutputValidationError
    text = "".join(event.text for event in result.events if isinstance(event, TextDelta))
    assert error.raw == text and text
    assert not [event for event in result.events if isinstance(event, Output)]


async def test_llama_cpp_python_refuses_a_json_schema_response_format(
    llama_cpp_python: RunningServer, proxy: Any, closing: Closing
) -> None:
    # Quirk: llama-cpp-python 0.3.36 knows response_format "text" and "json_object" only; the OpenAI
    # "json_schema" form is an HTTP 500 whose body says so. rxllm delivers it typed, message intact.
    recording: RecordingProxy = await proxy(llama_cpp_python)
    provider = closing(LLAMA_CPP_PYTHON.provider(recording.origin, max_retries=0))
    result = await collect_events(provider.stream(request()), timeout=TIMEOUT)
    error = result.error
    assert type(error) is InternalServerError
    assert error.status == 500
    assert "Input should be 'text' or 'json_object'" in error.message
    assert result.events == []
