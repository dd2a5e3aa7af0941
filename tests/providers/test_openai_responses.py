"""OpenAIResponses end to end against a loopback server: exact requests, error bodies, a stream."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
import pytest
from conftest import Closing, Reply, collect_events

from rxllm.errors import ProviderError
from rxllm.events import Final, TextDelta, Usage
from rxllm.messages import Message, ReasoningPart, TextPart, ToolCallPart, ToolResultPart
from rxllm.providers.openai import OpenAIResponses
from rxllm.request import CompletionRequest
from rxllm.tools import tool

MODEL = "gpt-5-mini-2025-08-07"
HELLO = CompletionRequest([Message.user("Hello")])


def ev(type: str, **fields: Any) -> bytes:
    return b"event: " + type.encode() + b"\ndata: " + msgspec.json.encode({"type": type, **fields}) + b"\n\n"


USAGE = {"input_tokens": 9, "output_tokens": 2, "total_tokens": 11}
STREAM = [
    ev("response.created", response={"id": "resp_1", "status": "in_progress", "model": MODEL}),
    ev("response.output_text.delta", item_id="msg_1", output_index=0, content_index=0, delta="Hi"),
    ev(
        "response.completed", response={"id": "resp_1", "status": "completed", "model": MODEL, "usage": USAGE}
    ),
]
EVENTS = [
    TextDelta(text="Hi"),
    Final(
        usage=Usage(input_tokens=9, output_tokens=2, total_tokens=11),
        finish_reason="completed",
        response_id="resp_1",
        model=MODEL,
    ),
]


@pytest.fixture
def responses(closing: Closing) -> Callable[..., OpenAIResponses]:
    def make(model: str = MODEL, **options: Any) -> OpenAIResponses:
        return closing(OpenAIResponses(model, **options))

    return make


@tool
def add(a: int, b: int = 1) -> int:
    """Add two numbers.

    Args:
        a: The first number.
        b: The second number.
    """
    return a + b


async def test_a_text_stream(sse_server: Any, responses: Callable[..., OpenAIResponses]) -> None:
    server = await sse_server(Reply(STREAM))
    result = await collect_events(responses(api_key="sk-test", base_url=server.base_url).stream(HELLO))
    assert (result.events, result.completed) == (EVENTS, True)


async def test_exact_request_body_and_headers(
    sse_server: Any, responses: Callable[..., OpenAIResponses]
) -> None:
    server = await sse_server(Reply(STREAM))
    history = [
        Message.user("What is 2 + 3?"),
        Message(
            role="assistant",
            content=(
                ReasoningPart(text="Use add.", id="rs_1", encrypted_content="gAAAA=="),
                ReasoningPart(text="From another provider."),
                TextPart(text="Adding."),
                ToolCallPart(id="fc_1", call_id="call_1", name="add", arguments={"a": 2, "b": 3}),
                ToolCallPart(id="call_2", call_id="call_2", name="add", arguments='{"a": oops'),
            ),
        ),
        Message(
            role="tool",
            content=(
                ToolResultPart(call_id="call_1", name="add", content="5"),
                ToolResultPart(call_id="call_2", name="add", content="bad arguments", is_error=True),
            ),
        ),
        Message(role="assistant", content=(ReasoningPart(text="", id="rs_2"), TextPart(text="It is 5."))),
        Message.user("Thanks"),
    ]
    request = CompletionRequest(
        history,
        preamble="You are terse.",
        tools=[add],
        temperature=0.2,
        max_tokens=64,
        tool_choice="required",
        params={"reasoning": {"effort": "low", "summary": "auto"}, "temperature": 0.3},
    )
    await collect_events(responses(api_key="sk-test-key", base_url=server.base_url).stream(request))
    (received,) = server.requests
    assert received.path == "/v1/responses"
    assert received.headers["Authorization"] == "Bearer sk-test-key"
    assert received.headers["Accept"] == "text/event-stream"
    assert received.json == {
        "model": MODEL,
        "input": [
            {"type": "message", "role": "user", "content": "What is 2 + 3?"},
            {
                "type": "reasoning",
                "id": "rs_1",
                "summary": [{"type": "summary_text", "text": "Use add."}],
                "encrypted_content": "gAAAA==",
            },
            {"type": "message", "role": "assistant", "content": "Adding."},
            {
                "type": "function_call",
                "call_id": "call_1",
                "name": "add",
                "arguments": '{"a":2,"b":3}',
                "id": "fc_1",
            },
            # An id that is the call_id (minted by another provider) is no item id: not sent.
            {"type": "function_call", "call_id": "call_2", "name": "add", "arguments": '{"a": oops'},
            {"type": "function_call_output", "call_id": "call_1", "output": "5"},
            {"type": "function_call_output", "call_id": "call_2", "output": "bad arguments"},
            {"type": "reasoning", "id": "rs_2", "summary": []},
            {"type": "message", "role": "assistant", "content": "It is 5."},
            {"type": "message", "role": "user", "content": "Thanks"},
        ],
        "stream": True,
        "instructions": "You are terse.",
        "tools": [
            {
                "type": "function",
                "name": "add",
                "description": "Add two numbers.",
                "parameters": add.parameters,
            }
        ],
        "tool_choice": "required",
        "temperature": 0.3,
        "max_output_tokens": 64,
        "reasoning": {"effort": "low", "summary": "auto"},
    }
    assert "include" not in received.json


async def test_stateless_use_asks_for_encrypted_reasoning_through_params(
    sse_server: Any, responses: Callable[..., OpenAIResponses]
) -> None:
    server = await sse_server(Reply(STREAM))
    request = CompletionRequest(
        [Message.user("Hi")], params={"store": False, "include": ["reasoning.encrypted_content"]}
    )
    await collect_events(responses(base_url=server.base_url).stream(request))
    body = server.requests[0].json
    assert (body["store"], body["include"]) == (False, ["reasoning.encrypted_content"])


async def test_key_and_base_url_from_environment(
    sse_server: Any, monkeypatch: pytest.MonkeyPatch, responses: Callable[..., OpenAIResponses]
) -> None:
    server = await sse_server(Reply(STREAM))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url + "/")
    result = await collect_events(responses().stream(HELLO))
    assert result.events == EVENTS
    assert server.requests[0].headers["Authorization"] == "Bearer sk-from-env"
    assert server.requests[0].path == "/v1/responses"


def test_defaults() -> None:
    provider = OpenAIResponses(MODEL, api_key="sk-x", base_url=None)
    assert provider.url.endswith("/responses")
    assert OpenAIResponses.default_base_url == "https://api.openai.com/v1"
    assert repr(OpenAIResponses(MODEL, base_url="https://api.openai.com/v1")) == (
        f"OpenAIResponses(model='{MODEL}', base_url='https://api.openai.com/v1')"
    )


async def test_http_400_with_openai_error_body(
    sse_server: Any, responses: Callable[..., OpenAIResponses]
) -> None:
    body = (
        b'{"error": {"message": "Item \'fc_1\' of type \'function_call\' was provided without its required '
        b'\'reasoning\' item: \'rs_1\'.", "type": "invalid_request_error", "param": "input", "code": null}}'
    )
    server = await sse_server(
        Reply(status=400, body=body, headers={"content-type": "application/json", "x-request-id": "req_9"})
    )
    result = await collect_events(responses(base_url=server.base_url).stream(HELLO))
    assert result.events == []
    error = result.error
    assert isinstance(error, ProviderError)
    assert (error.status, error.type, error.code, error.request_id) == (
        400,
        "invalid_request_error",
        None,
        "req_9",
    )
    assert error.message.startswith("Item 'fc_1' of type 'function_call' was provided without")


async def test_response_failed_mid_stream(sse_server: Any, responses: Callable[..., OpenAIResponses]) -> None:
    failed = ev(
        "response.failed",
        response={"id": "resp_1", "status": "failed", "error": {"code": "server_error", "message": "Boom."}},
    )
    server = await sse_server(Reply([*STREAM[:2], failed]))
    result = await collect_events(responses(base_url=server.base_url).stream(HELLO))
    assert result.events == [TextDelta(text="Hi")]
    assert isinstance(result.error, ProviderError)
    assert (result.error.message, result.error.code) == ("Boom.", "server_error")
