"""AnthropicMessages end to end against a loopback server: exact requests, error bodies, a stream."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
import pytest
from conftest import Closing, Reply, collect_events

from rxllm.errors import (
    AuthenticationError,
    NotFoundError,
    OverloadedError,
    StreamTruncatedError,
)
from rxllm.events import Final, Retrying, TextDelta, Usage
from rxllm.messages import Message, ReasoningPart, TextPart, ToolCallPart, ToolResultPart
from rxllm.providers.anthropic import AnthropicMessages
from rxllm.request import CompletionRequest
from rxllm.response import CompletionResponse
from rxllm.retry import Backoff
from rxllm.tools import tool

MODEL = "claude-sonnet-4-5-20250929"
HELLO = CompletionRequest([Message.user("Hello")])


def ev(type: str, **fields: Any) -> bytes:
    return b"event: " + type.encode() + b"\ndata: " + msgspec.json.encode({"type": type, **fields}) + b"\n\n"


STREAM = [
    ev(
        "message_start",
        message={
            "id": "msg_1",
            "model": MODEL,
            "content": [],
            "usage": {"input_tokens": 9, "output_tokens": 1},
        },
    ),
    ev("content_block_start", index=0, content_block={"type": "text", "text": ""}),
    ev("content_block_delta", index=0, delta={"type": "text_delta", "text": "Hi"}),
    ev("content_block_stop", index=0),
    ev("message_delta", delta={"stop_reason": "end_turn", "stop_sequence": None}, usage={"output_tokens": 2}),
    ev("message_stop"),
]
EVENTS = [
    TextDelta(text="Hi"),
    Final(
        usage=Usage(input_tokens=9, output_tokens=2, total_tokens=11),
        finish_reason="end_turn",
        response_id="msg_1",
        model=MODEL,
    ),
]


def origin(server: Any) -> str:
    """Anthropic's base URL is the origin: requests go to {base_url}/v1/messages."""
    url: str = server.base_url
    return url.removesuffix("/v1")


@pytest.fixture
def claude(closing: Closing) -> Callable[..., AnthropicMessages]:
    def make(model: str = MODEL, **options: Any) -> AnthropicMessages:
        return closing(AnthropicMessages(model, **options))

    return make


@tool
def add(a: int, b: int = 1) -> int:
    """Add two numbers.

    Args:
        a: The first number.
        b: The second number.
    """
    return a + b


async def test_a_text_stream(sse_server: Any, claude: Callable[..., AnthropicMessages]) -> None:
    server = await sse_server(Reply(STREAM))
    result = await collect_events(claude(api_key="sk-ant-test", base_url=origin(server)).stream(HELLO))
    assert (result.events, result.completed) == (EVENTS, True)


async def test_exact_request_body_and_headers(
    sse_server: Any, claude: Callable[..., AnthropicMessages]
) -> None:
    server = await sse_server(Reply(STREAM))
    history = [
        Message.user("What is 2 + 3 and 4 + 5?"),
        Message(
            role="assistant",
            content=(
                ReasoningPart(text="Two sums.", signature="EqQBsig=="),
                ReasoningPart(text="", encrypted_content="EmwKAhgBredacted"),
                ReasoningPart(text="Another provider's summary.", id="rs_1", encrypted_content="gAAAA=="),
                TextPart(text="Adding."),
                ToolCallPart(id="toolu_1", call_id="toolu_1", name="add", arguments={"a": 2, "b": 3}),
                ToolCallPart(id="toolu_2", call_id="toolu_2", name="add", arguments={"a": 4, "b": 5}),
            ),
        ),
        Message(role="tool", content=(ToolResultPart(call_id="toolu_1", name="add", content="5"),)),
        Message(
            role="tool",
            content=(ToolResultPart(call_id="toolu_2", name="add", content="overflow", is_error=True),),
        ),
        Message.user("And the total?"),
        Message(role="assistant", content=(TextPart(text="14."),)),
        Message.user("Thanks"),
    ]
    request = CompletionRequest(
        history,
        preamble="You are terse.",
        tools=[add],
        temperature=0.2,
        tool_choice="required",
        params={"thinking": {"type": "enabled", "budget_tokens": 1024}, "temperature": 1.0},
    )
    await collect_events(claude(api_key="sk-ant-key", base_url=origin(server)).stream(request))
    (received,) = server.requests
    assert received.path == "/v1/messages"
    assert received.headers["x-api-key"] == "sk-ant-key"
    assert received.headers["anthropic-version"] == "2023-06-01"
    assert "Authorization" not in received.headers
    assert received.headers["Accept"] == "text/event-stream"
    assert received.json == {
        "model": MODEL,
        "max_tokens": 4096,
        "messages": [
            {"role": "user", "content": "What is 2 + 3 and 4 + 5?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "Two sums.", "signature": "EqQBsig=="},
                    {"type": "redacted_thinking", "data": "EmwKAhgBredacted"},
                    {"type": "text", "text": "Adding."},
                    {"type": "tool_use", "id": "toolu_1", "name": "add", "input": {"a": 2, "b": 3}},
                    {"type": "tool_use", "id": "toolu_2", "name": "add", "input": {"a": 4, "b": 5}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "5"},
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_2",
                        "content": "overflow",
                        "is_error": True,
                    },
                    {"type": "text", "text": "And the total?"},
                ],
            },
            {"role": "assistant", "content": "14."},
            {"role": "user", "content": "Thanks"},
        ],
        "stream": True,
        "system": "You are terse.",
        "tools": [{"name": "add", "description": "Add two numbers.", "input_schema": add.parameters}],
        "tool_choice": {"type": "any"},
        "temperature": 1.0,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
    }


@pytest.mark.parametrize(
    ("choice", "sent"),
    [
        ("auto", {"type": "auto"}),
        ("required", {"type": "any"}),
        ("none", {"type": "none"}),
        ({"type": "tool", "name": "add"}, {"type": "tool", "name": "add"}),
    ],
)
async def test_tool_choice_mapping(
    sse_server: Any, claude: Callable[..., AnthropicMessages], choice: Any, sent: Any
) -> None:
    server = await sse_server(Reply(STREAM))
    await collect_events(
        claude(base_url=origin(server)).stream(
            CompletionRequest([Message.user("Hi")], tools=[add], tool_choice=choice)
        )
    )
    assert server.requests[0].json["tool_choice"] == sent


async def test_max_tokens_default_provider_setting_and_request_override(
    sse_server: Any, claude: Callable[..., AnthropicMessages]
) -> None:
    server = await sse_server(Reply(STREAM))
    await collect_events(claude(base_url=origin(server)).stream(HELLO))
    await collect_events(claude(base_url=origin(server), max_tokens=1000).stream(HELLO))
    await collect_events(
        claude(base_url=origin(server), max_tokens=1000).stream(
            CompletionRequest([Message.user("Hi")], max_tokens=50)
        )
    )
    assert [r.json["max_tokens"] for r in server.requests] == [4096, 1000, 50]


async def test_system_messages_in_history_join_the_preamble(
    sse_server: Any, claude: Callable[..., AnthropicMessages]
) -> None:
    server = await sse_server(Reply(STREAM))
    request = CompletionRequest(
        [Message.system("Answer in French."), Message.user("Hi")], preamble="Be brief."
    )
    await collect_events(claude(base_url=origin(server)).stream(request))
    body = server.requests[0].json
    assert (body["system"], body["messages"]) == (
        "Be brief.\n\nAnswer in French.",
        [{"role": "user", "content": "Hi"}],
    )


async def test_key_base_url_and_version_from_environment(
    sse_server: Any, monkeypatch: pytest.MonkeyPatch, claude: Callable[..., AnthropicMessages]
) -> None:
    server = await sse_server(Reply(STREAM))
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-env")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", origin(server) + "/")
    result = await collect_events(claude().stream(HELLO))
    assert result.events == EVENTS
    (received,) = server.requests
    assert (received.path, received.headers["x-api-key"]) == ("/v1/messages", "sk-ant-env")


def test_defaults_without_a_key_still_send_the_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    provider = AnthropicMessages(MODEL)
    assert provider.url == "https://api.anthropic.com/v1/messages"
    assert provider.headers()["anthropic-version"] == "2023-06-01"
    assert "x-api-key" not in provider.headers()
    assert "sk-" not in repr(AnthropicMessages(MODEL, api_key="sk-ant-secret"))


async def test_http_401_with_anthropic_error_body(
    sse_server: Any, claude: Callable[..., AnthropicMessages]
) -> None:
    body = b'{"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}}'
    server = await sse_server(
        Reply(
            status=401,
            body=body,
            headers={"content-type": "application/json", "request-id": "req_011CSHoEeqs5C35K2UUqR7Fy"},
        )
    )
    result = await collect_events(claude(api_key="sk-bad", base_url=origin(server)).stream(HELLO))
    assert result.events == []
    error = result.error
    assert type(error) is AuthenticationError
    assert (error.status, error.message, error.type, error.request_id) == (
        401,
        "invalid x-api-key",
        "authentication_error",
        "req_011CSHoEeqs5C35K2UUqR7Fy",
    )


OVERLOADED = b'{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}'


async def test_http_529_overloaded_is_retried(
    sse_server: Any, claude: Callable[..., AnthropicMessages]
) -> None:
    overloaded = Reply(status=529, body=OVERLOADED, headers={"content-type": "application/json"})
    server = await sse_server([overloaded, Reply(STREAM)])
    fast = Backoff(initial=0.01, maximum=0.01, jitter=0)
    result = await collect_events(claude(base_url=origin(server), backoff=fast).stream(HELLO))
    retrying = Retrying(attempt=2, delay=0.01, reason="HTTP 529 (overloaded_error)", status=529)
    assert (result.events, result.completed) == ([retrying, *EVENTS], True)
    assert len(server.requests) == 2


async def test_http_529_every_time_keeps_the_overloaded_error(
    sse_server: Any, claude: Callable[..., AnthropicMessages]
) -> None:
    server = await sse_server(
        Reply(status=529, body=OVERLOADED, headers={"content-type": "application/json"})
    )
    fast = Backoff(initial=0.01, maximum=0.01)
    result = await collect_events(claude(base_url=origin(server), backoff=fast, max_retries=2).stream(HELLO))
    assert type(result.error) is OverloadedError
    assert (result.error.status, result.error.type, result.error.message) == (
        529,
        "overloaded_error",
        "Overloaded",
    )
    assert len(server.requests) == 3


async def test_overloaded_error_after_http_200_then_close(
    sse_server: Any, claude: Callable[..., AnthropicMessages]
) -> None:
    overloaded = ev("error", error={"type": "overloaded_error", "message": "Overloaded"})
    server = await sse_server(Reply([*STREAM[:3], overloaded]))
    result = await collect_events(claude(base_url=origin(server)).stream(HELLO))
    assert result.events == [TextDelta(text="Hi")]
    error = result.error
    assert type(error) is OverloadedError
    assert (error.status, error.type) == (None, "overloaded_error")
    # The input tokens message_start reported are billed: the error carries them, and names the request.
    assert error.usage == Usage(input_tokens=9, output_tokens=1, total_tokens=10)
    url = f"{origin(server)}/v1/messages"
    assert str(error) == f"error in stream: Overloaded (type=overloaded_error) [POST {url}]"


async def test_stop_reason_without_message_stop_is_truncated(
    sse_server: Any, claude: Callable[..., AnthropicMessages]
) -> None:
    server = await sse_server(Reply(STREAM[:-1]))
    result = await collect_events(claude(base_url=origin(server)).stream(HELLO))
    assert result.events == [TextDelta(text="Hi")]
    error = result.error
    assert isinstance(error, StreamTruncatedError)
    url = f"{origin(server)}/v1/messages"
    assert str(error) == f"the anthropic-messages stream ended before message_stop [POST {url}]"
    usage = Usage(input_tokens=9, output_tokens=2, total_tokens=11)
    assert error.usage == usage
    assert error.partial == CompletionResponse(
        text="Hi",
        usage=usage,
        finish_reason="end_turn",
        response_id="msg_1",
        model=MODEL,
        usage_complete=True,
    )


async def test_overloaded_error_after_message_start_before_any_text_is_retried(
    sse_server: Any, claude: Callable[..., AnthropicMessages]
) -> None:
    # message_start carries no user-visible event, so nothing was delivered yet: safe to send again.
    overloaded = ev("error", error={"type": "overloaded_error", "message": "Overloaded"})
    server = await sse_server([Reply([STREAM[0], overloaded]), Reply(STREAM)])
    fast = Backoff(initial=0.01, maximum=0.01, jitter=0)
    result = await collect_events(claude(base_url=origin(server), backoff=fast).stream(HELLO))
    retrying = Retrying(attempt=2, delay=0.01, reason="overloaded_error in the stream", status=None)
    assert (result.events, result.completed) == ([retrying, *EVENTS], True)
    assert len(server.requests) == 2


async def test_a_base_url_ending_in_v1_is_a_not_found_naming_the_doubled_path(
    sse_server: Any, claude: Callable[..., AnthropicMessages]
) -> None:
    # Anthropic's base_url is the origin: ".../v1" posts to /v1/v1/messages, and the error says so.
    body = b'{"type": "error", "error": {"type": "not_found_error", "message": "Not Found"}}'
    server = await sse_server(Reply(status=404, body=body, headers={"content-type": "application/json"}))
    result = await collect_events(claude(base_url=server.base_url).stream(HELLO))
    error = result.error
    assert type(error) is NotFoundError
    url = f"{server.base_url}/v1/messages"
    assert url.endswith("/v1/v1/messages")
    assert (error.status, error.method, error.url) == (404, "POST", url)
    assert str(error) == f"HTTP 404: Not Found (type=not_found_error) [POST {url}]"
    assert server.requests[0].path == "/v1/v1/messages"
    assert len(server.requests) == 1
