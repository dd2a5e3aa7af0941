"""OpenAIChat end to end against a loopback server replaying OpenAI-shaped SSE bytes."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from conftest import Closing, Reply, collect_events, rxllm_tasks_finish
from flood_server import flood_server
from openai_sse import DONE, MODEL, RESPONSE_ID, chunk, tool_fragment
from reactivex.scheduler.eventloop import AsyncIOScheduler

from rxllm.control import PauseControl
from rxllm.errors import (
    AuthenticationError,
    ChunkDecodeError,
    EventLoopError,
    EventTooLargeError,
    InsecureTransportError,
    InternalServerError,
    NotEventStreamError,
    ProviderError,
    RateLimitError,
    SseError,
    StreamTruncatedError,
    TransportError,
)
from rxllm.events import Final, ReasoningDelta, Retrying, TextDelta, ToolCall, ToolCallDelta, Usage
from rxllm.messages import Message, TextPart, ToolCallPart, ToolResultPart
from rxllm.providers.openai import OpenAIChat
from rxllm.request import CompletionRequest
from rxllm.response import CompletionResponse
from rxllm.retry import Backoff
from rxllm.tools import tool

HELLO = CompletionRequest([Message.user("Hello")])


@pytest.fixture
def chat(closing: Closing) -> Callable[..., OpenAIChat]:
    """Make ``OpenAIChat`` providers that are closed when the test ends."""

    def make(model: str = MODEL, **options: Any) -> OpenAIChat:
        return closing(OpenAIChat(model, **options))

    return make


FAST = Backoff(initial=0.01, maximum=0.02)  # the retries these tests go through, without their waits

USAGE = {
    "prompt_tokens": 19,
    "completion_tokens": 10,
    "total_tokens": 29,
    "prompt_tokens_details": {"cached_tokens": 3, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 2, "audio_tokens": 0},
}
USAGE_EVENT = Usage(
    input_tokens=19, output_tokens=10, total_tokens=29, cached_input_tokens=3, reasoning_tokens=2
)
TEXT_STREAM = [
    chunk({"role": "assistant", "content": "", "refusal": None}),
    chunk({"content": "Hello"}),
    chunk({"content": " wörld 你好"}),
    chunk({}, "stop"),
    chunk(usage=USAGE, choices=False),
    DONE,
]
TEXT_EVENTS = [
    TextDelta(text="Hello"),
    TextDelta(text=" wörld 你好"),
    Final(
        usage=USAGE_EVENT,
        finish_reason="stop",
        response_id="chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
        model=MODEL,
    ),
]


async def test_text_only(sse_server: Any, chat: Callable[..., OpenAIChat]) -> None:
    server = await sse_server(Reply(TEXT_STREAM))
    result = await collect_events(chat(MODEL, api_key="sk-test", base_url=server.base_url).stream(HELLO))
    assert result.events == TEXT_EVENTS
    assert result.completed
    assert len(server.requests) == 1


async def test_exact_request_body_and_headers(sse_server: Any, chat: Callable[..., OpenAIChat]) -> None:
    @tool
    def add(a: int, b: int = 1) -> int:
        """Add two numbers.

        Args:
            a: The first number.
            b: The second number.
        """
        return a + b

    server = await sse_server(Reply(TEXT_STREAM))
    history = [
        Message.user("What is 2 + 3?"),
        Message(
            role="assistant",
            content=(ToolCallPart(id="call_1", call_id="call_1", name="add", arguments={"a": 2, "b": 3}),),
        ),
        Message(role="tool", content=(ToolResultPart(call_id="call_1", name="add", content="5"),)),
        Message(role="assistant", content=(TextPart(text="It is 5."),)),
        Message.user("Thanks"),
    ]
    request = CompletionRequest(
        history,
        preamble="You are terse.",
        tools=[add],
        temperature=0.2,
        max_tokens=64,
        tool_choice="auto",
        params={"top_p": 0.9, "temperature": 0.3},
    )
    await collect_events(chat(MODEL, api_key="sk-test-key", base_url=server.base_url).stream(request))
    (received,) = server.requests
    assert received.path == "/v1/chat/completions"
    assert received.headers["Authorization"] == "Bearer sk-test-key"
    assert received.headers["Content-Type"] == "application/json"
    assert received.headers["Accept"] == "text/event-stream"
    assert received.json == {
        "model": MODEL,
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "What is 2 + 3?"},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "add", "arguments": '{"a":2,"b":3}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "5"},
            {"role": "assistant", "content": "It is 5."},
            {"role": "user", "content": "Thanks"},
        ],
        "stream": True,
        "stream_options": {"include_usage": True},
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "add",
                    "description": "Add two numbers.",
                    "parameters": add.parameters,
                },
            }
        ],
        "tool_choice": "auto",
        "temperature": 0.3,
        "max_tokens": 64,
        "top_p": 0.9,
    }
    assert received.json["tools"][0]["function"]["parameters"]["required"] == ["a"]


async def test_no_key_sends_no_authorization_header(
    sse_server: Any, monkeypatch: pytest.MonkeyPatch, chat: Callable[..., OpenAIChat]
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    server = await sse_server(Reply(TEXT_STREAM))
    await collect_events(chat("llama3.2", base_url=server.base_url).stream(HELLO))
    assert "Authorization" not in server.requests[0].headers


async def test_key_and_base_url_from_environment(
    sse_server: Any, monkeypatch: pytest.MonkeyPatch, chat: Callable[..., OpenAIChat]
) -> None:
    server = await sse_server(Reply(TEXT_STREAM))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url + "/")
    result = await collect_events(chat(MODEL).stream(HELLO))
    assert result.events == TEXT_EVENTS
    assert server.requests[0].headers["Authorization"] == "Bearer sk-from-env"


async def test_two_parallel_tool_calls_on_indexes_0_and_1_interleaved(
    sse_server: Any, chat: Callable[..., OpenAIChat]
) -> None:
    server = await sse_server(
        Reply(
            [
                chunk({"role": "assistant", "content": None}),
                tool_fragment(0, id="call_a", name="get_weather", arguments=""),
                tool_fragment(1, id="call_b", name="get_time", arguments=""),
                tool_fragment(0, arguments='{"city": '),
                tool_fragment(1, arguments='{"tz": "Europe/Paris"}'),
                tool_fragment(0, arguments='"Zürich"}'),
                chunk({}, "tool_calls"),
                chunk(usage=USAGE, choices=False),
                DONE,
            ]
        )
    )
    result = await collect_events(chat(MODEL, base_url=server.base_url).stream(HELLO))
    deltas = [e for e in result.events if isinstance(e, ToolCallDelta)]
    calls = [e for e in result.events if isinstance(e, ToolCall)]
    a, b = deltas[0].internal_call_id, deltas[1].internal_call_id
    assert a != b
    assert deltas == [
        ToolCallDelta(id="call_a", internal_call_id=a, name="get_weather"),
        ToolCallDelta(id="call_b", internal_call_id=b, name="get_time"),
        ToolCallDelta(id="call_a", internal_call_id=a, arguments_delta='{"city": '),
        ToolCallDelta(id="call_b", internal_call_id=b, arguments_delta='{"tz": "Europe/Paris"}'),
        ToolCallDelta(id="call_a", internal_call_id=a, arguments_delta='"Zürich"}'),
    ]
    assert calls == [
        ToolCall(
            id="call_a",
            call_id="call_a",
            internal_call_id=a,
            name="get_weather",
            arguments={"city": "Zürich"},
        ),
        ToolCall(
            id="call_b",
            call_id="call_b",
            internal_call_id=b,
            name="get_time",
            arguments={"tz": "Europe/Paris"},
        ),
    ]
    assert result.events[-1] == Final(
        usage=USAGE_EVENT,
        finish_reason="tool_calls",
        response_id="chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
        model=MODEL,
    )
    assert result.events.index(calls[-1]) == len(result.events) - 2


async def test_two_calls_sharing_index_0(sse_server: Any, chat: Callable[..., OpenAIChat]) -> None:
    # LiteLLM and OneAPI put parallel calls all on index 0, told apart by id.
    server = await sse_server(
        Reply(
            [
                tool_fragment(0, id="call_1", name="add", arguments='{"a": 1,'),
                tool_fragment(0, arguments=' "b": 2}'),
                tool_fragment(0, id="call_2", name="add", arguments='{"a": 3, "b": 4}'),
                chunk({}, "tool_calls"),
                DONE,
            ]
        )
    )
    result = await collect_events(chat(MODEL, base_url=server.base_url).stream(HELLO))
    calls = [(e.id, e.name, e.arguments) for e in result.events if isinstance(e, ToolCall)]
    assert calls == [("call_1", "add", {"a": 1, "b": 2}), ("call_2", "add", {"a": 3, "b": 4})]


async def test_usage_only_last_chunk(sse_server: Any, chat: Callable[..., OpenAIChat]) -> None:
    server = await sse_server(Reply(TEXT_STREAM))
    result = await collect_events(chat(MODEL, base_url=server.base_url).stream(HELLO))
    assert [e for e in result.events if isinstance(e, Final)] == [TEXT_EVENTS[-1]]


async def test_no_usage_at_all_is_none_not_zeros(sse_server: Any, chat: Callable[..., OpenAIChat]) -> None:
    # Compatible servers that ignore stream_options send no usage chunk: unknown, never zeros.
    server = await sse_server(Reply([chunk({"content": "Hi"}), chunk({}, "stop"), DONE]))
    result = await collect_events(chat(MODEL, base_url=server.base_url).stream(HELLO))
    assert result.events == [
        TextDelta(text="Hi"),
        Final(
            usage=None,
            finish_reason="stop",
            response_id="chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
            model=MODEL,
            usage_complete=False,
        ),
    ]
    assert result.completed


async def test_finish_reason_and_usage_without_done_is_whole(
    sse_server: Any, chat: Callable[..., OpenAIChat]
) -> None:
    server = await sse_server(Reply(TEXT_STREAM[:-1]))
    result = await collect_events(chat(MODEL, base_url=server.base_url).stream(HELLO))
    assert result.events == TEXT_EVENTS
    assert result.completed


async def test_a_cut_after_the_finish_reason_before_its_usage_is_a_truncation(
    sse_server: Any, chat: Callable[..., OpenAIChat]
) -> None:
    # A fault-injecting server cuts here: the answer looks whole, but its usage (asked for) never came.
    server = await sse_server(Reply(TEXT_STREAM[:4]))
    result = await collect_events(chat(MODEL, base_url=server.base_url).stream(HELLO))
    assert result.events == TEXT_EVENTS[:2]  # the Final never comes
    error = result.error
    assert type(error) is StreamTruncatedError
    url = f"{server.base_url}/chat/completions"
    assert (
        str(error)
        == f"the openai-chat stream ended before [DONE] (or a finish reason and its usage) [POST {url}]"
    )
    assert (error.method, error.url, error.connection_lost, error.usage) == ("POST", url, False, None)
    assert error.partial == CompletionResponse(
        text="Hello wörld 你好",
        finish_reason="stop",
        response_id="chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
        model=MODEL,
    )
    assert len(server.requests) == 1


async def test_without_the_end_marker_requirement_a_finish_reason_is_the_end(
    sse_server: Any, chat: Callable[..., OpenAIChat]
) -> None:
    # A server that sends neither usage nor [DONE]: whole only with require_end_marker=False.
    server = await sse_server(Reply([chunk({"content": "Hi"}), chunk({}, "stop")]))
    provider = chat(MODEL, base_url=server.base_url, require_end_marker=False)
    result = await collect_events(provider.stream(HELLO))
    assert result.completed
    assert result.events == [
        TextDelta(text="Hi"),
        Final(finish_reason="stop", response_id=RESPONSE_ID, model=MODEL, usage_complete=False),
    ]
    strict = await collect_events(chat(MODEL, base_url=server.base_url).stream(HELLO))
    assert type(strict.error) is StreamTruncatedError
    assert len(server.requests) == 2


async def test_reasoning_content(sse_server: Any, chat: Callable[..., OpenAIChat]) -> None:
    # DeepSeek, vLLM and GLM stream thinking as delta.reasoning_content.
    server = await sse_server(
        Reply(
            [
                chunk({"role": "assistant", "content": None, "reasoning_content": "Let me"}),
                chunk({"content": None, "reasoning_content": " think."}),
                chunk({"content": "42", "reasoning_content": None}),
                chunk({}, "stop"),
                DONE,
            ]
        )
    )
    result = await collect_events(chat("deepseek-reasoner", base_url=server.base_url).stream(HELLO))
    assert result.events[:3] == [
        ReasoningDelta(text="Let me"),
        ReasoningDelta(text=" think."),
        TextDelta(text="42"),
    ]


async def test_keep_alive_comments(sse_server: Any, chat: Callable[..., OpenAIChat]) -> None:
    server = await sse_server(Reply([b": ping\n\n", TEXT_STREAM[1], b": keep-alive\n\n", *TEXT_STREAM[2:]]))
    result = await collect_events(chat(MODEL, base_url=server.base_url).stream(HELLO))
    assert result.events == TEXT_EVENTS


@pytest.mark.parametrize("line_end", [b"\r\n", b"\r"], ids=["crlf", "cr"])
async def test_crlf_and_cr_line_ends(
    sse_server: Any, line_end: bytes, chat: Callable[..., OpenAIChat]
) -> None:
    server = await sse_server(Reply([piece.replace(b"\n", line_end) for piece in TEXT_STREAM]))
    result = await collect_events(chat(MODEL, base_url=server.base_url).stream(HELLO))
    assert result.events == TEXT_EVENTS


async def test_bytes_arriving_one_at_a_time_with_multibyte_characters(
    sse_server: Any, chat: Callable[..., OpenAIChat]
) -> None:
    whole = b"".join(TEXT_STREAM)
    server = await sse_server(Reply([whole[i : i + 1] for i in range(len(whole))]))
    result = await collect_events(chat(MODEL, base_url=server.base_url).stream(HELLO))
    assert result.events == TEXT_EVENTS


async def test_401_with_json_error_body(sse_server: Any, chat: Callable[..., OpenAIChat]) -> None:
    body = (
        b'{"error": {"message": "Incorrect API key provided: sk-bad. You can find your API key at '
        b'https://platform.openai.com/account/api-keys.", "type": "invalid_request_error", '
        b'"param": null, "code": "invalid_api_key"}}'
    )
    server = await sse_server(
        Reply(status=401, body=body, headers={"content-type": "application/json", "x-request-id": "req_123"})
    )
    result = await collect_events(chat(MODEL, api_key="sk-bad", base_url=server.base_url).stream(HELLO))
    assert result.events == []
    error = result.error
    assert isinstance(error, ProviderError)
    assert error.status == 401
    assert error.message.startswith("Incorrect API key provided: sk-bad.")
    assert error.type == "invalid_request_error"
    assert error.code == "invalid_api_key"
    assert error.request_id == "req_123"
    assert type(error) is AuthenticationError
    url = f"{server.base_url}/chat/completions"
    assert (error.method, error.url) == ("POST", url)
    assert str(error) == (
        f"HTTP 401: {error.message} (type=invalid_request_error, code=invalid_api_key) [request id req_123]"
        f" [POST {url}]"
    )
    assert len(server.requests) == 1


async def test_error_body_that_is_not_json_is_kept(sse_server: Any, chat: Callable[..., OpenAIChat]) -> None:
    server = await sse_server(Reply(status=502, body=b"<html>Bad Gateway</html>", headers={}))
    result = await collect_events(chat(MODEL, base_url=server.base_url, backoff=FAST).stream(HELLO))
    assert len(server.requests) == 3, "a 502 is retried twice, then delivered"
    assert type(result.error) is InternalServerError
    assert (result.error.status, result.error.message, result.error.body) == (
        502,
        "<html>Bad Gateway</html>",
        "<html>Bad Gateway</html>",
    )


async def test_malformed_chunk(sse_server: Any, chat: Callable[..., OpenAIChat]) -> None:
    server = await sse_server(
        Reply([TEXT_STREAM[1], b'data: {"id": "x", "choices": [{"delta": \n\n', *TEXT_STREAM[2:]])
    )
    result = await collect_events(chat(MODEL, base_url=server.base_url).stream(HELLO))
    assert result.events == [TextDelta(text="Hello")]
    assert isinstance(result.error, ChunkDecodeError)
    assert result.error.data == '{"id": "x", "choices": [{"delta": '


async def test_error_object_mid_stream(sse_server: Any, chat: Callable[..., OpenAIChat]) -> None:
    # OpenRouter and gateways report upstream failures inside a 200 stream.
    error = b'data: {"error": {"message": "Upstream overloaded", "type": "server_error", "code": 502}}\n\n'
    server = await sse_server(Reply([TEXT_STREAM[1], error, *TEXT_STREAM[2:]]))
    result = await collect_events(chat(MODEL, base_url=server.base_url).stream(HELLO))
    assert result.events == [TextDelta(text="Hello")]
    assert isinstance(result.error, ProviderError)
    assert (result.error.status, result.error.message, result.error.type, result.error.code) == (
        None,
        "Upstream overloaded",
        "server_error",
        "502",
    )


@pytest.mark.parametrize(
    ("pieces", "delivered"),
    [
        ([], []),
        (TEXT_STREAM[:3], TEXT_EVENTS[:2]),
        ([*TEXT_STREAM[:3], TEXT_STREAM[3][:30]], TEXT_EVENTS[:2]),
    ],
    ids=["before-any-event", "after-content", "cut-inside-a-chunk"],
)
async def test_truncated_stream(
    sse_server: Any, pieces: list[bytes], delivered: list[Any], chat: Callable[..., OpenAIChat]
) -> None:
    server = await sse_server(Reply(pieces))
    result = await collect_events(chat(MODEL, base_url=server.base_url).stream(HELLO))
    assert result.events == delivered
    assert isinstance(result.error, StreamTruncatedError)
    url = f"{server.base_url}/chat/completions"
    assert str(result.error) == (
        f"the openai-chat stream ended before [DONE] (or a finish reason and its usage) [POST {url}]"
    )
    text = "".join(event.text for event in delivered)
    assert result.error.partial == CompletionResponse(text=text)
    assert len(server.requests) == 1, "a truncated stream is never re-sent"


async def test_dropped_connection_mid_stream(sse_server: Any, chat: Callable[..., OpenAIChat]) -> None:
    server = await sse_server(Reply(TEXT_STREAM[:3], abort=True))
    result = await collect_events(chat(MODEL, base_url=server.base_url).stream(HELLO))
    assert result.events == TEXT_EVENTS[:2]
    error = result.error
    assert isinstance(error, StreamTruncatedError)
    # In rxllm's words: aiohttp's message holds an internal "400" that would read like an HTTP status.
    url = f"{server.base_url}/chat/completions"
    assert str(error) == f"connection dropped mid-stream (ClientPayloadError) [POST {url}]"
    assert "400" in str(error.__cause__) and "400" not in str(error).removesuffix(f" [POST {url}]")
    assert type(error.__cause__).__name__ == "ClientPayloadError"
    assert error.connection_lost
    assert error.partial == CompletionResponse(text="Hello wörld 你好")
    assert len(server.requests) == 1


async def test_unreachable_server_is_a_transport_error(chat: Callable[..., OpenAIChat]) -> None:
    backoff = Backoff(initial=0.01, maximum=0.02, jitter=0)
    result = await collect_events(
        chat(MODEL, base_url="http://127.0.0.1:9/v1", backoff=backoff).stream(HELLO)
    )
    assert result.events == [
        Retrying(attempt=2, delay=0.01, reason="connection failed", status=None),
        Retrying(attempt=3, delay=0.02, reason="connection failed", status=None),
    ]
    assert isinstance(result.error, TransportError)
    assert str(result.error).startswith("could not reach the server: ClientConnectorError")
    assert str(result.error).endswith(" [POST http://127.0.0.1:9/v1/chat/completions]")
    assert (result.error.method, result.error.url) == ("POST", "http://127.0.0.1:9/v1/chat/completions")


async def test_event_over_the_size_bound(sse_server: Any, chat: Callable[..., OpenAIChat]) -> None:
    server = await sse_server(Reply([TEXT_STREAM[1], chunk({"content": "x" * 5000}), *TEXT_STREAM[2:]]))
    result = await collect_events(chat(MODEL, base_url=server.base_url, max_event_size=4096).stream(HELLO))
    assert result.events == [TextDelta(text="Hello")]
    assert isinstance(result.error, EventTooLargeError)
    assert result.error.limit == 4096


async def test_finish_reason_without_done_is_a_whole_turn(
    sse_server: Any, chat: Callable[..., OpenAIChat]
) -> None:
    server = await sse_server(Reply(TEXT_STREAM[:-1]))
    result = await collect_events(chat(MODEL, base_url=server.base_url).stream(HELLO))
    assert result.events == TEXT_EVENTS
    assert result.completed


async def test_done_completes_even_when_the_server_keeps_the_connection_open(
    sse_server: Any, chat: Callable[..., OpenAIChat]
) -> None:
    server = await sse_server(Reply(TEXT_STREAM, hold_open=30))
    started = time.monotonic()
    result = await collect_events(chat(MODEL, base_url=server.base_url).stream(HELLO))
    assert result.completed and result.events == TEXT_EVENTS
    await asyncio.wait_for(server.disconnected.wait(), 1.0)
    assert time.monotonic() - started < 5


async def test_dispose_mid_stream_closes_the_connection(
    sse_server: Any, chat: Callable[..., OpenAIChat]
) -> None:
    server = await sse_server(
        Reply([chunk({"content": "tick"})], endless=chunk({"content": "tick"}), delay=0.01)
    )
    events: list[Any] = []
    got_three = asyncio.Event()

    def on_next(event: Any) -> None:
        events.append(event)
        if len(events) == 3:
            got_three.set()

    subscription = chat(MODEL, base_url=server.base_url).stream(HELLO).subscribe(on_next)
    await asyncio.wait_for(got_three.wait(), 5)
    subscription.dispose()
    seen = len(events)
    await asyncio.wait_for(server.disconnected.wait(), 1.0)
    # The stream's task has ended: nothing is left that could deliver an event.
    await rxllm_tasks_finish()
    assert len(events) == seen
    assert len(server.requests) == 1


async def test_pause_and_resume(sse_server: Any, chat: Callable[..., OpenAIChat]) -> None:
    pieces = [chunk({"content": f"t{i} "}) for i in range(200)]
    server = await sse_server(Reply([*pieces, chunk({}, "stop"), DONE], endless=None, delay=0.001))
    control = PauseControl()
    events: list[Any] = []
    done = asyncio.Event()
    got_first = asyncio.Event()

    def on_next(event: Any) -> None:
        events.append(event)
        got_first.set()

    provider = chat(MODEL, base_url=server.base_url)
    provider.stream(HELLO, pause=control).subscribe(on_next, lambda e: done.set(), done.set)
    await asyncio.wait_for(got_first.wait(), 5)
    control.pause()
    held = len(events)
    # The server has written the whole reply: every event could have been delivered by now.
    await asyncio.wait_for(server.written_all.wait(), 10)
    assert len(events) == held, "nothing is delivered while paused"
    assert held < 200
    cpu_before = time.process_time()
    await asyncio.sleep(0.5)  # the condition under test: half a second paused, with the bytes waiting
    cpu_paused = time.process_time() - cpu_before
    assert cpu_paused < 0.1, f"paused stream used {cpu_paused:.3f} s of CPU in 0.5 s"
    assert len(events) == held
    control.resume()
    await asyncio.wait_for(done.wait(), 10)
    assert [e.text for e in events if isinstance(e, TextDelta)] == [f"t{i} " for i in range(200)]
    assert isinstance(events[-1], Final)


async def test_paused_stream_stops_reading_the_socket(chat: Callable[..., OpenAIChat]) -> None:
    # A server that writes 40 MiB as fast as the socket takes it is held back by TCP flow control: one of
    # its writes waits (the server says so) instead of the whole reply going out.
    control = PauseControl(paused=True)
    events: list[Any] = []
    async with flood_server(20_000) as server:
        stream = chat(MODEL, base_url=server.base_url).stream(HELLO, pause=control)
        subscription = stream.subscribe(events.append)
        assert await server.outcome() == "stalled", "the server is blocked while the client does not read"
        assert events == []
        assert server.written < 16 * 1024 * 1024
        subscription.dispose()
        await asyncio.wait_for(server.left.wait(), 5)


async def test_each_subscription_sends_its_own_request(
    sse_server: Any, chat: Callable[..., OpenAIChat]
) -> None:
    server = await sse_server(Reply(TEXT_STREAM))
    stream = chat(MODEL, base_url=server.base_url).stream(HELLO)
    first, second = await asyncio.gather(collect_events(stream), collect_events(stream))
    assert first.events == second.events == TEXT_EVENTS
    assert len(server.requests) == 2


def test_subscribing_without_an_event_loop_says_what_to_do() -> None:
    errors: list[Exception] = []
    OpenAIChat(MODEL, base_url="http://127.0.0.1:9/v1").stream(HELLO).subscribe(on_error=errors.append)
    (error,) = errors
    assert isinstance(error, EventLoopError)
    assert "running asyncio event loop" in str(error) and "AsyncIOScheduler" in str(error)


async def test_asyncio_scheduler_from_another_thread(
    sse_server: Any, chat: Callable[..., OpenAIChat]
) -> None:
    # A GUI thread subscribes with the loop's scheduler; events arrive on the loop.
    server = await sse_server(Reply(TEXT_STREAM))
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    events: list[Any] = []
    threads: set[int] = set()

    def on_next(event: Any) -> None:
        threads.add(threading.get_ident())
        events.append(event)

    def finish(*_: object) -> None:
        loop.call_soon_threadsafe(done.set)

    def subscribe_from_thread() -> None:
        chat(MODEL, base_url=server.base_url).stream(HELLO).subscribe(
            on_next, finish, finish, scheduler=AsyncIOScheduler(loop)
        )

    thread = threading.Thread(target=subscribe_from_thread)
    thread.start()
    thread.join()
    await asyncio.wait_for(done.wait(), 5)
    assert events == TEXT_EVENTS
    assert threads == {threading.get_ident()}


def test_api_key_over_plain_http_to_a_remote_host_is_refused() -> None:
    with pytest.raises(InsecureTransportError, match="allow_insecure_http=True"):
        OpenAIChat(MODEL, api_key="sk-secret-123", base_url="http://api.example.com/v1")
    OpenAIChat(MODEL, api_key="sk-secret-123", base_url="http://api.example.com/v1", allow_insecure_http=True)
    OpenAIChat(MODEL, api_key="sk-secret-123", base_url="http://localhost:11434/v1")


def test_repr_never_shows_the_key() -> None:
    provider = OpenAIChat(MODEL, api_key="sk-secret-123", base_url="https://api.openai.com/v1")
    assert "sk-secret" not in repr(provider)
    assert repr(provider) == f"OpenAIChat(model='{MODEL}', base_url='https://api.openai.com/v1')"


# -- a 2xx reply that is not an event stream -------------------------------------------------------

COMPLETION_JSON = (
    b'{"id":"chatcmpl-1","object":"chat.completion","model":"m","choices":[{"index":0,'
    b'"message":{"role":"assistant","content":"Hi"},"finish_reason":"stop"}]}'
)


async def test_json_for_a_streamed_request_is_not_an_event_stream(
    sse_server: Any, chat: Callable[..., OpenAIChat]
) -> None:
    # A compatible server that ignored "stream": true answers one JSON completion.
    server = await sse_server(Reply(body=COMPLETION_JSON, headers={"content-type": "application/json"}))
    result = await collect_events(chat(MODEL, base_url=server.base_url, midstream_retries=2).stream(HELLO))
    assert result.events == []
    error = result.error
    assert type(error) is NotEventStreamError
    assert isinstance(error, SseError)
    assert (error.content_type, error.first_bytes) == ("application/json", COMPLETION_JSON)
    url = f"{server.base_url}/chat/completions"
    assert str(error) == (
        f"expected an event stream (text/event-stream), got application/json: {COMPLETION_JSON!r}"
        f" [POST {url}]"
    )
    assert len(server.requests) == 1, "neither retried nor resent: the server would answer the same"


async def test_a_proxys_html_page_is_not_an_event_stream(
    sse_server: Any, chat: Callable[..., OpenAIChat]
) -> None:
    page = b"<html><body>Please log in to the corporate proxy</body></html>"
    server = await sse_server(Reply(body=page, headers={"content-type": "text/html; charset=utf-8"}))
    result = await collect_events(chat(MODEL, base_url=server.base_url).stream(HELLO))
    error = result.error
    assert type(error) is NotEventStreamError
    assert (error.content_type, error.first_bytes) == ("text/html; charset=utf-8", page)
    assert str(error) == (
        f"expected an event stream (text/event-stream), got text/html; charset=utf-8: {page!r}"
        f" [POST {server.base_url}/chat/completions]"
    )


async def test_a_json_error_object_in_a_200_is_the_provider_error_of_its_class(
    sse_server: Any, chat: Callable[..., OpenAIChat]
) -> None:
    body = b'{"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}}'
    server = await sse_server(
        Reply(body=body, headers={"content-type": "application/json", "x-request-id": "req_7"})
    )
    backoff = Backoff(initial=0.01, maximum=0.01, jitter=0)
    result = await collect_events(chat(MODEL, base_url=server.base_url, backoff=backoff).stream(HELLO))
    error = result.error
    assert type(error) is RateLimitError
    assert (error.status, error.message, error.type, error.code, error.request_id) == (
        None,
        "Rate limit reached",
        "requests",
        "rate_limit_exceeded",
        "req_7",
    )
    reason = "rate_limit_exceeded in the stream"
    assert result.events == [
        Retrying(attempt=2, delay=0.01, reason=reason),
        Retrying(attempt=3, delay=0.01, reason=reason),
    ], "a transient error object is retried as one inside a stream is"
    assert len(server.requests) == 3


async def test_an_event_stream_with_a_charset_is_an_event_stream(
    sse_server: Any, chat: Callable[..., OpenAIChat]
) -> None:
    server = await sse_server(
        Reply(TEXT_STREAM, headers={"content-type": "text/event-stream; charset=utf-8"})
    )
    result = await collect_events(chat(MODEL, base_url=server.base_url).stream(HELLO))
    assert (result.events, result.completed) == (TEXT_EVENTS, True)


async def test_an_empty_body_without_a_content_type_is_not_an_event_stream(
    sse_server: Any, chat: Callable[..., OpenAIChat]
) -> None:
    server = await sse_server(Reply(body=b"", headers={}))
    result = await collect_events(chat(MODEL, base_url=server.base_url).stream(HELLO))
    assert type(result.error) is NotEventStreamError
    assert str(result.error).startswith("expected an event stream (text/event-stream), got ")
