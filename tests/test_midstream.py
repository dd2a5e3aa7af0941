"""Mid-stream resends end to end: each fault once then success, every time, what is never resent.

Each test checks the exact events (the failed attempt's, one ``StreamReset``, the
good attempt's) and the exact requests the fault-injection server saw.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import msgspec
import pytest
from conftest import Closing, Collected, collect_events
from fault_server import (
    MODEL,
    ROLE,
    FaultServer,
    StartFaultServer,
    Step,
    chat_chunk,
    fault_server,
    in_stream_error,
    text_stream,
)
from reactivex.abc import DisposableBase

from rxllm import Agent, FinalResponse, Hook, PauseControl, Terminate, tool
from rxllm.errors import (
    BadRequestError,
    ChunkDecodeError,
    EventTooLargeError,
    InternalServerError,
    OverloadedError,
    PromptCancelledError,
    ProviderError,
    RxLLMError,
    SseError,
    StreamTimeoutError,
    StreamTruncatedError,
)
from rxllm.events import (
    Final,
    Retrying,
    StreamReset,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolResult,
    Usage,
)
from rxllm.messages import Message, TextPart, ToolCallPart, ToolResultPart
from rxllm.operators import collect_response
from rxllm.providers._base import Provider
from rxllm.providers.anthropic import AnthropicMessages
from rxllm.providers.openai import OpenAIChat, OpenAIResponses
from rxllm.request import CompletionRequest
from rxllm.response import CompletionResponse
from rxllm.retry import Backoff
from rxllm.testing import Turn, sse_bytes
from rxllm.timeouts import Timeouts

__all__ = ["fault_server"]

HELLO = CompletionRequest([Message.user("Hello")])
FAST = Backoff(initial=0.01, maximum=0.02, jitter=0)
PARTIAL = text_stream("Hel", "lo")[:2]  # the role chunk and "Hel"
GOOD = text_stream("Good", "bye")
# GOOD reports no usage (no usage chunk), nor does any broken attempt here: unknown, so not complete.
FINAL = Final(finish_reason="stop", response_id="chatcmpl-1", model=MODEL, usage_complete=False)
GOOD_EVENTS = [TextDelta(text="Good"), TextDelta(text="bye"), FINAL]
BROKEN = b'data: {"choices": [{"delta": \n\n'


@pytest.fixture
def chat(closing: Closing) -> Callable[..., OpenAIChat]:
    def make(server: FaultServer, **options: Any) -> OpenAIChat:
        options.setdefault("backoff", FAST)
        return closing(OpenAIChat(MODEL, api_key="sk-test", base_url=server.base_url, **options))

    return make


Chat = Callable[..., OpenAIChat]

FAULTS: dict[str, tuple[Step, str, type[Exception], dict[str, Any]]] = {
    "dropped connection": (
        Step(pieces=PARTIAL, ending="drop"),
        "connection lost mid-stream",
        StreamTruncatedError,
        {},
    ),
    "truncation": (Step(pieces=PARTIAL), "stream ended without its end marker", StreamTruncatedError, {}),
    "malformed chunk": (Step(pieces=[*PARTIAL, BROKEN]), "malformed chunk", ChunkDecodeError, {}),
    "invalid utf-8": (
        Step(pieces=[*PARTIAL, b'data: {"choices": [{"delta": {"content": "\xff"}}]}\n\n']),
        "invalid event stream",
        SseError,
        {},
    ),
    "idle timeout": (
        Step(pieces=PARTIAL, ending="stall", stall=30),
        "idle timeout",
        StreamTimeoutError,
        {"timeouts": Timeouts(idle=0.3)},
    ),
    "keep-alives only": (
        Step(pieces=PARTIAL, ending="ping", delay=0.02),
        "idle timeout",
        StreamTimeoutError,
        {"timeouts": Timeouts(idle=0.3)},
    ),
    "overloaded error event": (
        Step(pieces=[*PARTIAL, in_stream_error("Upstream overloaded", "overloaded_error", "529")]),
        "overloaded_error in the stream",
        OverloadedError,
        {},
    ),
    "server error event": (
        Step(pieces=[*PARTIAL, in_stream_error("boom", "server_error")]),
        "server_error in the stream",
        InternalServerError,
        {},
    ),
    "error event with a status code": (
        Step(pieces=[*PARTIAL, in_stream_error("Service unavailable", "upstream", "503")]),
        "error 503 in the stream (upstream)",
        InternalServerError,
        {},
    ),
}


@pytest.mark.parametrize("fault", list(FAULTS))
async def test_each_fault_once_then_success(fault_server: StartFaultServer, chat: Chat, fault: str) -> None:
    step, reason, _error, options = FAULTS[fault]
    server = await fault_server(step, Step(pieces=GOOD))
    result = await collect_events(chat(server, midstream_retries=1, **options).stream(HELLO))
    assert result.events == [TextDelta(text="Hel"), StreamReset(attempt=2, reason=reason), *GOOD_EVENTS]
    assert result.completed
    assert server.request_count == 2
    assert server.requests[1].body == server.requests[0].body, "the same request is sent again"


@pytest.mark.parametrize("fault", list(FAULTS))
async def test_each_fault_every_time_ends_with_its_typed_error(
    fault_server: StartFaultServer, chat: Chat, fault: str
) -> None:
    step, reason, error_type, options = FAULTS[fault]
    server = await fault_server(step)
    result = await collect_events(chat(server, midstream_retries=2, **options).stream(HELLO))
    hel = TextDelta(text="Hel")
    assert result.events == [
        hel,
        StreamReset(attempt=2, reason=reason),
        hel,
        StreamReset(attempt=3, reason=reason),
        hel,
    ]
    assert type(result.error) is error_type
    assert server.request_count == 3, "1 + midstream_retries requests"


async def test_without_midstream_retries_nothing_changes(fault_server: StartFaultServer, chat: Chat) -> None:
    server = await fault_server(Step(pieces=PARTIAL, ending="drop"), Step(pieces=GOOD))
    result = await collect_events(chat(server).stream(HELLO))
    assert result.events == [TextDelta(text="Hel")]
    assert isinstance(result.error, StreamTruncatedError) and result.error.connection_lost
    assert server.request_count == 1


async def test_the_last_attempts_error_is_delivered_as_it_is(
    fault_server: StartFaultServer, chat: Chat
) -> None:
    # Different faults on each attempt: the observer gets the last one's error, with its own fields.
    last = in_stream_error("Upstream overloaded", "overloaded_error", "529")
    server = await fault_server(
        Step(pieces=PARTIAL, ending="drop"), Step(pieces=[*PARTIAL, BROKEN]), Step(pieces=[*PARTIAL, last])
    )
    result = await collect_events(chat(server, midstream_retries=2).stream(HELLO))
    assert [type(event) for event in result.events] == [
        TextDelta,
        StreamReset,
        TextDelta,
        StreamReset,
        TextDelta,
    ]
    assert [event.reason for event in result.events if isinstance(event, StreamReset)] == [
        "connection lost mid-stream",
        "malformed chunk",
    ]
    assert isinstance(result.error, ProviderError)
    assert (result.error.status, result.error.type, result.error.code, result.error.message) == (
        None,
        "overloaded_error",
        "529",
        "Upstream overloaded",
    )
    assert server.request_count == 3


@pytest.mark.parametrize(
    ("step", "error_type"),
    [
        (Step(pieces=[*PARTIAL, in_stream_error("bad schema", "invalid_request_error")]), BadRequestError),
        (Step(pieces=[*PARTIAL, chat_chunk({"content": "x" * 5000})]), EventTooLargeError),
    ],
    ids=["non-transient error event", "oversized event"],
)
async def test_failures_that_cannot_succeed_are_never_resent(
    fault_server: StartFaultServer, chat: Chat, step: Step, error_type: type[Exception]
) -> None:
    server = await fault_server(step, Step(pieces=GOOD))
    result = await collect_events(chat(server, midstream_retries=2, max_event_size=4096).stream(HELLO))
    assert result.events == [TextDelta(text="Hel")]
    assert type(result.error) is error_type
    assert server.request_count == 1


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
async def test_a_client_error_on_the_resend_is_never_resent(
    fault_server: StartFaultServer, chat: Chat, status: int
) -> None:
    refused = Step(status=status, body=b'{"error": {"message": "no", "type": "invalid_request_error"}}')
    server = await fault_server(Step(pieces=PARTIAL, ending="drop"), refused, Step(pieces=GOOD))
    result = await collect_events(chat(server, midstream_retries=3).stream(HELLO))
    assert result.events == [
        TextDelta(text="Hel"),
        StreamReset(attempt=2, reason="connection lost mid-stream"),
    ]
    assert isinstance(result.error, ProviderError)
    assert (result.error.status, result.error.message) == (status, "no")
    assert server.request_count == 2


@pytest.mark.parametrize("status", [408, 409, 429, 503])
async def test_a_transient_status_on_the_resend_is_retried_without_another_reset(
    fault_server: StartFaultServer, chat: Chat, status: int
) -> None:
    busy = Step(status=status, headers={"retry-after": "0"}, body=b'{"error": {"message": "busy"}}')
    server = await fault_server(Step(pieces=PARTIAL, ending="drop"), busy, Step(pieces=GOOD))
    result = await collect_events(chat(server, midstream_retries=1).stream(HELLO))
    assert result.events == [
        TextDelta(text="Hel"),
        StreamReset(attempt=2, reason="connection lost mid-stream"),
        Retrying(attempt=3, delay=0.0, reason=f"HTTP {status}, Retry-After 0 s", status=status),
        *GOOD_EVENTS,
    ]
    assert server.request_count == 3


async def test_failures_before_the_first_event_keep_their_own_budget(
    fault_server: StartFaultServer, chat: Chat
) -> None:
    # Two 503s use max_retries=2 (announced by Retrying); the drop after content uses the one resend.
    busy = Step(status=503, body=b"busy")
    server = await fault_server(busy, busy, Step(pieces=PARTIAL, ending="drop"), Step(pieces=GOOD))
    result = await collect_events(chat(server, midstream_retries=1).stream(HELLO))
    assert result.events == [
        Retrying(attempt=2, delay=0.01, reason="HTTP 503", status=503),
        Retrying(attempt=3, delay=0.02, reason="HTTP 503", status=503),
        TextDelta(text="Hel"),
        StreamReset(attempt=4, reason="connection lost mid-stream"),
        *GOOD_EVENTS,
    ]
    assert server.request_count == 4


async def test_a_stream_that_breaks_before_its_first_event_is_resent_too(
    fault_server: StartFaultServer, chat: Chat
) -> None:
    # A clean end after the role chunk only is no retry before the first event (the request reached
    # the model); with resends on it is resent, announced like any other.
    server = await fault_server(Step(pieces=[ROLE]), Step(pieces=GOOD))
    result = await collect_events(chat(server, midstream_retries=1).stream(HELLO))
    assert result.events == [
        StreamReset(attempt=2, reason="stream ended without its end marker"),
        *GOOD_EVENTS,
    ]
    assert server.request_count == 2


async def test_the_discarded_attempts_reported_usage_is_added_to_the_final(
    fault_server: StartFaultServer, chat: Chat
) -> None:
    def usage_chunk(prompt: int, completion: int) -> bytes:
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
        body = {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "model": MODEL,
            "choices": [],
            "usage": usage,
        }
        return b"data: " + msgspec.json.encode(body) + b"\n\n"

    failed = [*PARTIAL, chat_chunk({}, "stop"), usage_chunk(9, 1)]  # usage reported, then the drop
    good = [*GOOD[:-1], usage_chunk(9, 2), GOOD[-1]]
    server = await fault_server(Step(pieces=failed, ending="drop"), Step(pieces=good))
    result = await collect_events(chat(server, midstream_retries=1).stream(HELLO))
    final = result.events[-1]
    assert final == Final(
        usage=Usage(input_tokens=18, output_tokens=3, total_tokens=21),
        finish_reason="stop",
        response_id="chatcmpl-1",
        model=MODEL,
    )
    assert sum(isinstance(event, Final) for event in result.events) == 1, "no Final for the failed attempt"
    assert server.request_count == 2


async def test_the_usage_a_failed_response_reported_is_added_to_the_final(
    fault_server: StartFaultServer,
) -> None:
    # Responses reports a failed response's usage on response.failed, and bills it.
    scripted = Turn(text=["Hi ", "there."], usage=Usage(input_tokens=7, output_tokens=3, total_tokens=10))
    pieces = sse_bytes(scripted, "responses", model=MODEL)
    failed_event = {
        "type": "response.failed",
        "sequence_number": 9,
        "response": {
            "id": "resp_failed",
            "status": "failed",
            "error": {"code": "server_error", "message": "The model crashed."},
            "usage": {"input_tokens": 7, "output_tokens": 1, "total_tokens": 8},
        },
    }
    failed = b"event: response.failed\ndata: " + msgspec.json.encode(failed_event) + b"\n\n"
    first_text = next(index for index, piece in enumerate(pieces) if b"output_text.delta" in piece)
    server = await fault_server(Step(pieces=[*pieces[: first_text + 1], failed]), Step(pieces=pieces))
    async with OpenAIResponses(MODEL, base_url=server.base_url, backoff=FAST, midstream_retries=1) as model:
        result = await collect_events(model.stream(HELLO))
    assert result.completed
    assert StreamReset(attempt=2, reason="server_error in the stream") in result.events
    final = result.events[-1]
    assert isinstance(final, Final)
    assert final.usage == Usage(input_tokens=14, output_tokens=4, total_tokens=18)
    assert server.request_count == 2


async def test_collect_response_gives_the_good_attempt(fault_server: StartFaultServer, chat: Chat) -> None:
    server = await fault_server(Step(pieces=PARTIAL, ending="drop"), Step(pieces=GOOD))
    result = await collect_events(chat(server, midstream_retries=1).stream(HELLO).pipe(collect_response()))
    assert result.events == [
        CompletionResponse(text="Goodbye", finish_reason="stop", response_id="chatcmpl-1", model=MODEL)
    ]


async def test_disposing_during_the_resend_wait_sends_nothing_more(
    fault_server: StartFaultServer, chat: Chat
) -> None:
    # The first stream is disposed during its resend's wait; a twin subscribed right then breaks the same
    # way and waits as long, so its resend reaching the server (its completion) says the first one's wait
    # has elapsed too: had that one not been cancelled, its resend would have been request 3.
    broken = Step(pieces=PARTIAL, ending="drop")
    server = await fault_server(broken, broken, Step(pieces=GOOD))
    provider = chat(server, midstream_retries=1, backoff=Backoff(initial=0.05, maximum=0.05, jitter=0))
    loop = asyncio.get_running_loop()
    events: list[Any] = []
    twin: asyncio.Future[asyncio.Task[Collected]] = loop.create_future()
    subscription: list[DisposableBase] = []

    def dispose_and_start_the_twin() -> None:
        subscription[0].dispose()
        twin.set_result(asyncio.ensure_future(collect_events(provider.stream(HELLO))))

    def on_next(event: Any) -> None:
        events.append(event)
        if isinstance(event, StreamReset):
            # The reset comes before the wait's timer is set; this runs after it is set and, being ready
            # already, before the timer's callback however late the loop gets to it.
            loop.call_soon(dispose_and_start_the_twin)

    subscription.append(
        provider.stream(HELLO).subscribe(on_next, events.append, lambda: events.append("done"))
    )
    result = await (await asyncio.wait_for(twin, 5))
    reset = StreamReset(attempt=2, reason="connection lost mid-stream")
    assert (result.events, result.completed) == ([TextDelta(text="Hel"), reset, *GOOD_EVENTS], True)
    assert events == [TextDelta(text="Hel"), reset]
    assert server.request_count == 3


async def test_the_reset_waits_behind_a_pause(fault_server: StartFaultServer, chat: Chat) -> None:
    server = await fault_server(Step(pieces=PARTIAL, ending="drop"), Step(pieces=GOOD))
    control = PauseControl()
    events: list[Any] = []
    done = asyncio.get_running_loop().create_future()
    paused = asyncio.Event()

    def on_next(event: Any) -> None:
        events.append(event)
        if isinstance(event, TextDelta) and event.text == "Hel":
            control.pause()
            paused.set()

    provider = chat(server, midstream_retries=1)
    provider.stream(HELLO, pause=control).subscribe(
        on_next, done.set_exception, lambda: done.set_result(None)
    )
    await asyncio.wait_for(paused.wait(), 5)
    # The server has dropped the connection: unpaused, the stream would read that end and reset.
    await asyncio.wait_for(server.all_closed.wait(), 5)
    assert events == [TextDelta(text="Hel")], "nothing is delivered while paused"
    assert server.request_count == 1, "no resend while paused"
    control.resume()
    await asyncio.wait_for(done, 5)
    assert events == [
        TextDelta(text="Hel"),
        StreamReset(attempt=2, reason="connection lost mid-stream"),
        *GOOD_EVENTS,
    ]


async def test_total_timeout_bounds_the_resends(fault_server: StartFaultServer, chat: Chat) -> None:
    server = await fault_server(Step(pieces=PARTIAL, ending="drop", first_delay=0.1))
    provider = chat(server, midstream_retries=50, timeouts=Timeouts(total=0.6))
    result = await collect_events(provider.stream(HELLO))
    assert isinstance(result.error, StreamTimeoutError) and result.error.which == "total"
    assert 2 <= server.request_count < 50


# -- every provider ------------------------------------------------------------------------------

TURN = Turn(
    text=["The answer ", "is ", "42."], usage=Usage(input_tokens=20, output_tokens=6, total_tokens=26)
)
PROVIDERS: dict[str, type[Provider]] = {
    "openai": OpenAIChat,
    "responses": OpenAIResponses,
    "anthropic": AnthropicMessages,
}


@pytest.mark.parametrize("dialect", list(PROVIDERS))
async def test_every_provider_resends_a_dropped_stream(fault_server: StartFaultServer, dialect: Any) -> None:
    pieces = sse_bytes(TURN, dialect, model=MODEL)
    text_at = next(i for i, piece in enumerate(pieces) if b"The answer" in piece)
    server = await fault_server(Step(pieces=pieces[: text_at + 1], ending="drop"), Step(pieces=pieces))
    base_url = server.base_url.removesuffix("/v1") if dialect == "anthropic" else server.base_url
    async with PROVIDERS[dialect](MODEL, base_url=base_url, backoff=FAST, midstream_retries=1) as provider:
        result = await collect_events(provider.stream(HELLO))
    texts = [event.text for event in result.events if isinstance(event, TextDelta)]
    assert texts == ["The answer ", "The answer ", "is ", "42."]
    resets = [event for event in result.events if isinstance(event, StreamReset)]
    assert resets == [StreamReset(attempt=2, reason="connection lost mid-stream")]
    assert result.events.index(resets[0]) == 1
    final = result.events[-1]
    assert isinstance(final, Final) and result.completed
    # Anthropic reports usage on message_start (input, and output 1 so far): the dropped attempt's
    # report counts too.
    # The others report usage at the end only: the dropped attempt reported none, and the Final says so.
    assert TURN.usage is not None
    if dialect == "anthropic":
        assert final.usage == Usage(input_tokens=20, output_tokens=1, total_tokens=21) + TURN.usage
        assert final.usage_complete
    else:
        assert final.usage == TURN.usage
        assert not final.usage_complete
    assert server.request_count == 2


# -- the agent -----------------------------------------------------------------------------------


def call_chunks(index: int, call_id: str, name: str, arguments: str) -> list[bytes]:
    half = len(arguments) // 2
    return [
        chat_chunk(
            {
                "tool_calls": [
                    {
                        "index": index,
                        "id": call_id,
                        "type": "function",
                        "function": {"name": name, "arguments": ""},
                    }
                ]
            }
        ),
        chat_chunk({"tool_calls": [{"index": index, "function": {"arguments": arguments[:half]}}]}),
        chat_chunk({"tool_calls": [{"index": index, "function": {"arguments": arguments[half:]}}]}),
    ]


def calls_turn(call_id: str, city: str) -> list[bytes]:
    return [ROLE, *call_chunks(0, call_id, "weather", f'{{"city": "{city}"}}'), chat_chunk({}, "tool_calls")]


async def test_agent_turn_two_breaks_mid_tool_call_and_recovers(fault_server: StartFaultServer) -> None:
    ran: list[str] = []

    @tool
    def weather(city: str) -> str:
        """The weather in a city."""
        ran.append(city)
        return f"sunny in {city}"

    done = [b"data: [DONE]\n\n"]
    turn_two = calls_turn("call_b", "Bergen")
    server = await fault_server(
        Step(pieces=[*calls_turn("call_a", "Oslo"), *done]),
        Step(pieces=turn_two[:3], ending="drop"),  # the call's name and half its arguments, then the drop
        Step(pieces=[*turn_two, *done]),
        Step(pieces=text_stream("Sunny in both.")),
    )
    async with OpenAIChat(MODEL, base_url=server.base_url, backoff=FAST, midstream_retries=1) as model:
        result = await collect_events(Agent(model, tools=[weather]).stream_prompt("Oslo, then Bergen?"))
    assert result.completed
    assert ran == ["Oslo", "Bergen"], "the broken attempt's partial call never runs"
    events = result.events
    reset_at = events.index(StreamReset(attempt=2, reason="connection lost mid-stream"))
    assert sum(isinstance(event, StreamReset) for event in events) == 1
    before = events[:reset_at]
    assert [type(event) for event in before[-2:]] == [ToolCallDelta, ToolCallDelta]
    assert [event.call_id for event in events if isinstance(event, ToolCall)] == ["call_a", "call_b"]
    assert [event.content for event in events if isinstance(event, ToolResult)] == [
        "sunny in Oslo",
        "sunny in Bergen",
    ]
    final = events[-1]
    assert isinstance(final, FinalResponse)
    assert (final.text, final.turns) == ("Sunny in both.", 3)
    assert [message.role for message in final.history] == [
        "user",
        "assistant",
        "tool",
        "assistant",
        "tool",
        "assistant",
    ]
    assert final.history[3].content == (
        ToolCallPart(id="call_b", call_id="call_b", name="weather", arguments={"city": "Bergen"}),
    )
    assert final.history[4].content == (
        ToolResultPart(call_id="call_b", name="weather", content="sunny in Bergen"),
    )
    assert final.history[5].content == (TextPart(text="Sunny in both."),)
    assert server.request_count == 4
    assert server.requests[2].body == server.requests[1].body


async def test_agent_never_runs_a_complete_call_of_a_discarded_attempt(
    fault_server: StartFaultServer,
) -> None:
    # The first attempt's call is complete (its finish reason arrived) but the stream broke before
    # [DONE]: the ToolCall was delivered, then discarded; only the resent attempt's call runs.
    ran: list[str] = []
    heard: list[tuple[str, str]] = []

    @tool
    def weather(city: str) -> str:
        """The weather in a city."""
        ran.append(city)
        return f"rain in {city}"

    class Watch(Hook):
        async def on_text_delta(self, delta: str, aggregated: str) -> None:
            heard.append((delta, aggregated))

    def turn(text: str, call_id: str, city: str) -> list[bytes]:
        return [ROLE, chat_chunk({"content": text}), *calls_turn(call_id, city)[1:]]

    server = await fault_server(
        Step(pieces=turn("Checking Paris.", "call_p", "Paris"), ending="drop"),
        Step(pieces=[*turn("Checking Oslo.", "call_o", "Oslo"), b"data: [DONE]\n\n"]),
        Step(pieces=text_stream("Rain.")),
    )
    async with OpenAIChat(MODEL, base_url=server.base_url, backoff=FAST, midstream_retries=1) as model:
        agent = Agent(model, tools=[weather])
        result = await collect_events(agent.stream_prompt("Weather?", hook=Watch()))
    assert result.completed
    assert ran == ["Oslo"]
    calls = [event for event in result.events if isinstance(event, ToolCall)]
    assert [call.call_id for call in calls] == ["call_p", "call_o"]
    assert result.events.index(calls[0]) < result.events.index(
        StreamReset(attempt=2, reason="connection lost mid-stream")
    )
    assert heard == [
        ("Checking Paris.", "Checking Paris."),
        ("Checking Oslo.", "Checking Oslo."),
        ("Rain.", "Rain."),
    ]
    final = result.events[-1]
    assert isinstance(final, FinalResponse)
    assert [
        part for message in final.history for part in message.content if isinstance(part, ToolCallPart)
    ] == [ToolCallPart(id="call_o", call_id="call_o", name="weather", arguments={"city": "Oslo"})]
    assert "Paris" not in repr(final.history)
    assert server.request_count == 3


class Heard(Hook):
    """Records the text and reset hooks in order; ``stop_on_reset`` terminates the run at the reset."""

    def __init__(self, *, stop_on_reset: bool = False) -> None:
        self.heard: list[tuple[object, ...]] = []
        self.stop_on_reset = stop_on_reset

    async def on_text_delta(self, delta: str, aggregated: str) -> None:
        self.heard.append(("text", delta, aggregated))

    async def on_stream_reset(self, attempt: int, reason: str) -> Terminate | None:
        self.heard.append(("reset", attempt, reason))
        return Terminate("the stream broke") if self.stop_on_reset else None


async def test_the_hook_hears_the_reset_between_the_attempts(fault_server: StartFaultServer) -> None:
    server = await fault_server(
        Step(pieces=[ROLE, chat_chunk({"content": "Hel"})], ending="drop"),
        Step(pieces=text_stream("Hel", "lo")),
    )
    hook = Heard()
    async with OpenAIChat(MODEL, base_url=server.base_url, backoff=FAST, midstream_retries=1) as model:
        result = await collect_events(Agent(model).stream_prompt("Hi", hook=hook))
    assert result.completed
    assert hook.heard == [
        ("text", "Hel", "Hel"),
        ("reset", 2, "connection lost mid-stream"),
        ("text", "Hel", "Hel"),
        ("text", "lo", "Hello"),
    ]
    assert server.request_count == 2


async def test_terminate_at_the_reset_sends_no_resend(fault_server: StartFaultServer) -> None:
    broken = Step(pieces=[ROLE, chat_chunk({"content": "Hel"})], ending="drop")
    server = await fault_server(broken, broken, Step(pieces=text_stream("Hel", "lo")))
    hook = Heard(stop_on_reset=True)
    # The resend's wait leaves the hook time to answer (it is asked after the resend was decided).
    slow = Backoff(initial=0.3, maximum=0.3, jitter=0)
    async with OpenAIChat(MODEL, base_url=server.base_url, backoff=slow, midstream_retries=1) as model:
        result = await collect_events(Agent(model).stream_prompt("Hi", hook=hook))
        # A twin run started after that one ended breaks the same way and waits as long: its resend
        # reaching the server (its completion) says the first run's wait has elapsed too; had that
        # run's resend not been cancelled, it would have been request 3, before the twin's.
        twin = await collect_events(Agent(model).stream_prompt("Hi", hook=Heard()))
    assert isinstance(result.error, PromptCancelledError)
    assert str(result.error) == "prompt cancelled: the stream broke"
    assert hook.heard == [("text", "Hel", "Hel"), ("reset", 2, "connection lost mid-stream")]
    # As with every watched event, the one a hook terminates on is not delivered.
    assert result.events == [TextDelta(text="Hel")]
    assert twin.completed and isinstance(twin.events[-1], FinalResponse) and twin.events[-1].text == "Hello"
    assert server.request_count == 3


async def test_the_agent_sees_every_attempts_usage(fault_server: StartFaultServer) -> None:
    scripted = Turn(text=["Hi ", "there."], usage=Usage(input_tokens=7, output_tokens=3, total_tokens=10))
    pieces = sse_bytes(scripted, "anthropic", model=MODEL)
    server = await fault_server(Step(pieces=pieces[:4], ending="drop"), Step(pieces=pieces))
    origin = server.base_url.removesuffix("/v1")
    async with AnthropicMessages(MODEL, base_url=origin, backoff=FAST, midstream_retries=1) as model:
        result = await collect_events(Agent(model).stream_prompt("Hi"))
    final = result.events[-1]
    assert isinstance(final, FinalResponse)
    assert final.text == "Hi there."
    # The dropped attempt reported 7 input and 1 output token on message_start.
    assert final.usage == Usage(input_tokens=14, output_tokens=4, total_tokens=18)


def test_errors_are_rxllm_errors() -> None:
    for _step, _reason, error_type, _options in FAULTS.values():
        assert issubclass(error_type, RxLLMError)


async def test_the_backoff_grows_across_retries_and_resends_of_one_turn(
    fault_server: StartFaultServer,
) -> None:
    # A 503, a drop after content, a 503 again: failures 1, 2 and 3 of the turn wait 0.01, 0.02, 0.04 s,
    # one count for every kind (the resend's wait is the second).
    busy = Step(status=503, body=b"busy")
    server = await fault_server(busy, Step(pieces=PARTIAL, ending="drop"), busy, Step(pieces=GOOD))
    backoff = Backoff(initial=0.01, maximum=1.0, jitter=0)
    async with OpenAIChat(MODEL, base_url=server.base_url, backoff=backoff, midstream_retries=1) as model:
        result = await collect_events(model.stream(HELLO))
    assert result.events == [
        Retrying(attempt=2, delay=0.01, reason="HTTP 503", status=503),
        TextDelta(text="Hel"),
        StreamReset(attempt=3, reason="connection lost mid-stream"),
        Retrying(attempt=4, delay=0.04, reason="HTTP 503", status=503),
        *GOOD_EVENTS,
    ]
    assert server.request_count == 4
