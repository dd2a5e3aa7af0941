"""One set of scenarios, run against every provider: the same turn must give the same events.

Each scenario is a provider-neutral ``Turn`` (reasoning, text, refusal, tool calls,
how it ends); each provider's ``Wire`` writes it as that provider's documented
stream bytes (OpenAI Chat Completions chunks, OpenAI Responses semantic events,
Anthropic Messages content blocks) and a loopback server replays them. What must
be equal across providers is compared after ``normalized``: tool-call ids become
the call's ordinal (the raw ids are checked against each wire), whole reasoning
blocks are checked against their deltas and set aside, and ``ToolCall`` events are
compared as a list, since servers that mark the end of each call (Responses,
Anthropic) report it right after its arguments while Chat reports all at the
end. Finish reasons, response ids and models are each provider's own words.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec
import pytest
from conftest import Closing, Reply, collect_events

from rxllm.agent import Agent
from rxllm.errors import ProviderError, StreamTruncatedError
from rxllm.events import (
    Final,
    FinalResponse,
    Reasoning,
    ReasoningDelta,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolResult,
    Usage,
)
from rxllm.messages import Message
from rxllm.providers._base import Provider
from rxllm.providers.anthropic import AnthropicMessages
from rxllm.providers.openai import OpenAIChat, OpenAIResponses
from rxllm.request import CompletionRequest
from rxllm.tools import tool

End = Literal["stop", "tool_calls", "length", "refusal", "error", "cut"]


@dataclass(frozen=True)
class Call:
    name: str
    pieces: tuple[str, ...]


@dataclass(frozen=True)
class Turn:
    """A provider-neutral completion turn: what the model says, and how the stream ends."""

    reasoning: tuple[str, ...] = ()
    text: tuple[str, ...] = ()
    refusal: tuple[str, ...] = ()
    calls: tuple[Call, ...] = ()
    end: End = "stop"


INPUT, CACHED, OUTPUT, REASONING = 37, 5, 11, 4
ERROR_MESSAGE = "Overloaded"


def sse(data: Any, event: str | None = None) -> bytes:
    head = b"" if event is None else b"event: " + event.encode() + b"\n"
    return head + b"data: " + msgspec.json.encode(data) + b"\n\n"


@dataclass
class Wire:
    """How one provider writes a ``Turn``, and what it says about it."""

    name: str
    model: str
    response_id: str
    finish_reasons: dict[str, str]
    reasoning_tokens: bool
    reasoning_block: bool  # the provider sends a whole reasoning block after the deltas
    error_type_code: tuple[str | None, str | None]
    make: Callable[..., Provider]
    base_url: Callable[[str], str] = lambda url: url
    render: Callable[[Turn], list[bytes]] = field(default=lambda turn: [])

    def ids(self, index: int) -> tuple[str, str]:
        """The (id, call_id) this wire gives its call number ``index``."""
        if self.name == "openai-responses":
            return f"fc_{index}", f"call_{index}"
        if self.name == "anthropic-messages":
            return f"toolu_{index}", f"toolu_{index}"
        return f"call_{index}", f"call_{index}"

    def usage(self) -> Usage:
        return Usage(
            input_tokens=INPUT,
            output_tokens=OUTPUT,
            total_tokens=INPUT + OUTPUT,
            cached_input_tokens=CACHED,
            reasoning_tokens=REASONING if self.reasoning_tokens else 0,
        )


# -- OpenAI Chat Completions ----------------------------------------------------------

CHAT_ID, CHAT_MODEL = "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG", "gpt-4o-mini-2024-07-18"


def chat_chunk(delta: dict[str, Any] | None = None, finish: str | None = None, usage: Any = None) -> bytes:
    choices = (
        []
        if usage is not None
        else [{"index": 0, "delta": delta or {}, "logprobs": None, "finish_reason": finish}]
    )
    return sse(
        {
            "id": CHAT_ID,
            "object": "chat.completion.chunk",
            "created": 1741569952,
            "model": CHAT_MODEL,
            "system_fingerprint": "fp_06737a9306",
            "choices": choices,
            "usage": usage,
        }
    )


def render_chat(turn: Turn) -> list[bytes]:
    out = [chat_chunk({"role": "assistant", "content": "", "refusal": None})]
    out += [chat_chunk({"reasoning_content": piece}) for piece in turn.reasoning]
    out += [chat_chunk({"content": piece}) for piece in turn.text]
    out += [chat_chunk({"refusal": piece}) for piece in turn.refusal]
    for index, call in enumerate(turn.calls):
        first = {
            "index": index,
            "id": f"call_{index}",
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        out.append(chat_chunk({"tool_calls": [first]}))
        out += [
            chat_chunk({"tool_calls": [{"index": index, "function": {"arguments": p}}]}) for p in call.pieces
        ]
    if turn.end == "error":
        return [
            *out,
            sse({"error": {"message": ERROR_MESSAGE, "type": "server_error", "code": "overloaded"}}),
        ]
    if turn.end == "cut":
        return out
    reason = {"stop": "stop", "tool_calls": "tool_calls", "length": "length", "refusal": "stop"}[turn.end]
    usage = {
        "prompt_tokens": INPUT,
        "completion_tokens": OUTPUT,
        "total_tokens": INPUT + OUTPUT,
        "prompt_tokens_details": {"cached_tokens": CACHED, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": REASONING, "audio_tokens": 0},
    }
    return [*out, chat_chunk({}, reason), chat_chunk(usage=usage), b"data: [DONE]\n\n"]


# -- OpenAI Responses -------------------------------------------------------------------

RESP_ID, RESP_MODEL = "resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b", "gpt-5-mini-2025-08-07"


def render_responses(turn: Turn) -> list[bytes]:
    seq = iter(range(1_000_000))

    def ev(type: str, **fields: Any) -> bytes:
        return sse({"type": type, "sequence_number": next(seq), **fields}, event=type)

    def response(status: str, **fields: Any) -> dict[str, Any]:
        return {
            "id": RESP_ID,
            "object": "response",
            "created_at": 1741476542,
            "status": status,
            "model": RESP_MODEL,
            "output": [],
            "usage": None,
            **fields,
        }

    out = [
        ev("response.created", response=response("in_progress")),
        ev("response.in_progress", response=response("in_progress")),
    ]
    at = 0
    if turn.reasoning:
        text = "".join(turn.reasoning)
        out.append(
            ev(
                "response.output_item.added",
                output_index=at,
                item={"id": "rs_0", "type": "reasoning", "summary": []},
            )
        )
        out.append(
            ev(
                "response.reasoning_summary_part.added",
                item_id="rs_0",
                output_index=at,
                summary_index=0,
                part={"type": "summary_text", "text": ""},
            )
        )
        out += [
            ev(
                "response.reasoning_summary_text.delta",
                item_id="rs_0",
                output_index=at,
                summary_index=0,
                delta=piece,
            )
            for piece in turn.reasoning
        ]
        out.append(
            ev(
                "response.reasoning_summary_text.done",
                item_id="rs_0",
                output_index=at,
                summary_index=0,
                text=text,
            )
        )
        item = {
            "id": "rs_0",
            "type": "reasoning",
            "summary": [{"type": "summary_text", "text": text}],
            "encrypted_content": "gAAAAABo-rs0==",
        }
        out.append(ev("response.output_item.done", output_index=at, item=item))
        at += 1
    for kind, pieces in (("output_text", turn.text), ("refusal", turn.refusal)):
        if not pieces:
            continue
        message = {
            "id": "msg_0",
            "type": "message",
            "status": "in_progress",
            "role": "assistant",
            "content": [],
        }
        out.append(ev("response.output_item.added", output_index=at, item=message))
        out.append(
            ev(
                "response.content_part.added",
                item_id="msg_0",
                output_index=at,
                content_index=0,
                part={"type": kind, "text": ""},
            )
        )
        out += [
            ev(f"response.{kind}.delta", item_id="msg_0", output_index=at, content_index=0, delta=p)
            for p in pieces
        ]
        out.append(
            ev(
                f"response.{kind}.done",
                item_id="msg_0",
                output_index=at,
                content_index=0,
                text="".join(pieces),
            )
        )
        out.append(ev("response.output_item.done", output_index=at, item={**message, "status": "completed"}))
        at += 1
    for index, call in enumerate(turn.calls):
        item = {
            "id": f"fc_{index}",
            "type": "function_call",
            "status": "in_progress",
            "call_id": f"call_{index}",
            "name": call.name,
            "arguments": "",
        }
        out.append(ev("response.output_item.added", output_index=at, item=item))
        out += [
            ev("response.function_call_arguments.delta", item_id=f"fc_{index}", output_index=at, delta=p)
            for p in call.pieces
        ]
        arguments = "".join(call.pieces)
        out.append(
            ev(
                "response.function_call_arguments.done",
                item_id=f"fc_{index}",
                output_index=at,
                arguments=arguments,
            )
        )
        out.append(
            ev(
                "response.output_item.done",
                output_index=at,
                item={**item, "status": "completed", "arguments": arguments},
            )
        )
        at += 1
    if turn.end == "error":
        return [*out, ev("error", code="server_error", message=ERROR_MESSAGE, param=None)]
    if turn.end == "cut":
        return out
    usage = {
        "input_tokens": INPUT,
        "input_tokens_details": {"cached_tokens": CACHED},
        "output_tokens": OUTPUT,
        "output_tokens_details": {"reasoning_tokens": REASONING},
        "total_tokens": INPUT + OUTPUT,
    }
    if turn.end == "length":
        details = {"reason": "max_output_tokens"}
        return [
            *out,
            ev(
                "response.incomplete",
                response=response("incomplete", usage=usage, incomplete_details=details),
            ),
        ]
    return [*out, ev("response.completed", response=response("completed", usage=usage))]


# -- Anthropic Messages -----------------------------------------------------------------

MSG_ID, CLAUDE = "msg_01XFDUDYJgAACzvnptvVoYEL", "claude-sonnet-4-5-20250929"


def render_anthropic(turn: Turn) -> list[bytes]:
    def ev(type: str, **fields: Any) -> bytes:
        return sse({"type": type, **fields}, event=type)

    start_usage = {
        "input_tokens": INPUT - CACHED,
        "cache_read_input_tokens": CACHED,
        "cache_creation_input_tokens": 0,
        "output_tokens": 1,
    }
    message: dict[str, Any] = {
        "id": MSG_ID,
        "type": "message",
        "role": "assistant",
        "content": [],
        "model": CLAUDE,
        "stop_reason": None,
        "stop_sequence": None,
        "usage": start_usage,
    }
    out = [ev("message_start", message=message), ev("ping")]
    at = 0
    if turn.reasoning:
        out.append(
            ev(
                "content_block_start",
                index=at,
                content_block={"type": "thinking", "thinking": "", "signature": ""},
            )
        )
        out += [
            ev("content_block_delta", index=at, delta={"type": "thinking_delta", "thinking": p})
            for p in turn.reasoning
        ]
        out.append(
            ev(
                "content_block_delta",
                index=at,
                delta={"type": "signature_delta", "signature": "EqQBCgIYAhIM=="},
            )
        )
        out.append(ev("content_block_stop", index=at))
        at += 1
    for pieces in (turn.text, turn.refusal):
        if not pieces:
            continue
        out.append(ev("content_block_start", index=at, content_block={"type": "text", "text": ""}))
        out += [ev("content_block_delta", index=at, delta={"type": "text_delta", "text": p}) for p in pieces]
        out.append(ev("content_block_stop", index=at))
        at += 1
    for index, call in enumerate(turn.calls):
        block = {"type": "tool_use", "id": f"toolu_{index}", "name": call.name, "input": {}}
        out.append(ev("content_block_start", index=at, content_block=block))
        out.append(
            ev("content_block_delta", index=at, delta={"type": "input_json_delta", "partial_json": ""})
        )
        out += [
            ev("content_block_delta", index=at, delta={"type": "input_json_delta", "partial_json": p})
            for p in call.pieces
        ]
        out.append(ev("content_block_stop", index=at))
        at += 1
    if turn.end == "error":
        return [*out, ev("error", error={"type": "overloaded_error", "message": ERROR_MESSAGE})]
    if turn.end == "cut":
        return out
    reason = {"stop": "end_turn", "tool_calls": "tool_use", "length": "max_tokens", "refusal": "refusal"}[
        turn.end
    ]
    delta = ev(
        "message_delta", delta={"stop_reason": reason, "stop_sequence": None}, usage={"output_tokens": OUTPUT}
    )
    return [*out, delta, ev("message_stop")]


WIRES = [
    Wire(
        name="openai-chat",
        model=CHAT_MODEL,
        response_id=CHAT_ID,
        finish_reasons={"stop": "stop", "tool_calls": "tool_calls", "length": "length", "refusal": "stop"},
        reasoning_tokens=True,
        reasoning_block=False,
        error_type_code=("server_error", "overloaded"),
        make=OpenAIChat,
        render=render_chat,
    ),
    Wire(
        name="openai-responses",
        model=RESP_MODEL,
        response_id=RESP_ID,
        finish_reasons={
            "stop": "completed",
            "tool_calls": "completed",
            "length": "incomplete:max_output_tokens",
            "refusal": "refusal",
        },
        reasoning_tokens=True,
        reasoning_block=True,
        error_type_code=(None, "server_error"),
        make=OpenAIResponses,
        render=render_responses,
    ),
    Wire(
        name="anthropic-messages",
        model=CLAUDE,
        response_id=MSG_ID,
        finish_reasons={
            "stop": "end_turn",
            "tool_calls": "tool_use",
            "length": "max_tokens",
            "refusal": "refusal",
        },
        reasoning_tokens=False,
        reasoning_block=True,
        error_type_code=("overloaded_error", None),
        make=AnthropicMessages,
        base_url=lambda url: url.removesuffix("/v1"),
        render=render_anthropic,
    ),
]


@pytest.fixture(params=WIRES, ids=[wire.name for wire in WIRES])
def wire(request: pytest.FixtureRequest) -> Wire:
    chosen: Wire = request.param
    return chosen


@pytest.fixture
def connect(sse_server: Any, wire: Wire, closing: Closing) -> Callable[..., Any]:
    """Start a server replaying ``replies`` and give (provider, server) for this wire."""

    async def start(*replies: Reply) -> tuple[Provider, Any]:
        server = await sse_server(list(replies))
        return closing(
            wire.make(wire.model, api_key="sk-test", base_url=wire.base_url(server.base_url))
        ), server

    return start


HELLO = CompletionRequest([Message.user("Hello")])


def normalized(events: Sequence[Any], wire: Wire) -> tuple[list[Any], list[ToolCall]]:
    """What must be equal across providers: the events without ToolCall, and the ToolCall list.

    Tool-call ids become ``#n`` (the call's ordinal) after checking them against the
    wire; a whole ``Reasoning`` block is checked against its deltas and its carrier
    of provenance (signature or encrypted content), then set aside.
    """
    ordinal: dict[str, str] = {}
    reasoning: list[str] = []
    rest: list[Any] = []
    calls: list[ToolCall] = []
    for event in events:
        if isinstance(event, ToolCallDelta | ToolCall):
            label = ordinal.setdefault(event.internal_call_id, f"#{len(ordinal)}")
            index = int(label[1:])
            id, call_id = wire.ids(index)
            assert event.id == id
            assert event.internal_call_id.startswith("rx_")
            if isinstance(event, ToolCall):
                assert event.call_id == call_id
                calls.append(msgspec.structs.replace(event, id=label, call_id=label, internal_call_id=label))
            else:
                rest.append(msgspec.structs.replace(event, id=label, internal_call_id=label))
        elif isinstance(event, ReasoningDelta):
            reasoning.append(event.text)
            rest.append(ReasoningDelta(text=event.text))
        elif isinstance(event, Reasoning):
            assert wire.reasoning_block
            assert event.text == "".join(reasoning)
            assert (event.signature or event.encrypted_content) is not None
            reasoning.clear()
        else:
            rest.append(event)
    return rest, calls


def final(wire: Wire, end: str) -> Final:
    usage = wire.usage()
    return Final(
        usage=usage,
        finish_reason=wire.finish_reasons[end],
        response_id=wire.response_id,
        model=wire.model,
        usage_complete=usage is not None,  # a turn that reported no usage is not complete in it
    )


WEATHER = Call("get_weather", ('{"city": ', '"Zürich"}'))
CLOCK = Call("get_time", ('{"tz": "Europe/Paris"}',))


def deltas(label: str, call: Call) -> list[ToolCallDelta]:
    return [
        ToolCallDelta(id=label, internal_call_id=label, name=call.name),
        *(ToolCallDelta(id=label, internal_call_id=label, arguments_delta=p) for p in call.pieces),
    ]


def whole(label: str, call: Call, arguments: Any) -> ToolCall:
    return ToolCall(id=label, call_id=label, internal_call_id=label, name=call.name, arguments=arguments)


async def test_text(connect: Callable[..., Any], wire: Wire) -> None:
    provider, server = await connect(Reply(wire.render(Turn(text=("Hello", " wörld 你好")))))
    result = await collect_events(provider.stream(HELLO))
    assert result.completed
    assert normalized(result.events, wire) == (
        [TextDelta(text="Hello"), TextDelta(text=" wörld 你好"), final(wire, "stop")],
        [],
    )
    assert len(server.requests) == 1


async def test_bytes_arriving_one_at_a_time(connect: Callable[..., Any], wire: Wire) -> None:
    whole_stream = b"".join(wire.render(Turn(reasoning=("Hmm… ",), text=("Grüße ", "🎉 你好"))))
    provider, _ = await connect(Reply([whole_stream[i : i + 1] for i in range(len(whole_stream))]))
    result = await collect_events(provider.stream(HELLO), timeout=30)
    assert result.completed
    assert normalized(result.events, wire) == (
        [
            ReasoningDelta(text="Hmm… "),
            TextDelta(text="Grüße "),
            TextDelta(text="🎉 你好"),
            final(wire, "stop"),
        ],
        [],
    )


async def test_reasoning_then_text(connect: Callable[..., Any], wire: Wire) -> None:
    provider, _ = await connect(Reply(wire.render(Turn(reasoning=("The user", " greets."), text=("Hi!",)))))
    result = await collect_events(provider.stream(HELLO))
    assert normalized(result.events, wire) == (
        [
            ReasoningDelta(text="The user"),
            ReasoningDelta(text=" greets."),
            TextDelta(text="Hi!"),
            final(wire, "stop"),
        ],
        [],
    )
    blocks = [e for e in result.events if isinstance(e, Reasoning)]
    assert len(blocks) == (1 if wire.reasoning_block else 0)


async def test_one_tool_call(connect: Callable[..., Any], wire: Wire) -> None:
    provider, _ = await connect(
        Reply(wire.render(Turn(text=("Let me check.",), calls=(WEATHER,), end="tool_calls")))
    )
    result = await collect_events(provider.stream(HELLO))
    assert result.completed
    events, calls = normalized(result.events, wire)
    assert events == [TextDelta(text="Let me check."), *deltas("#0", WEATHER), final(wire, "tool_calls")]
    assert calls == [whole("#0", WEATHER, {"city": "Zürich"})]
    # Reported once, after its last argument piece and before the Final.
    (call,) = [e for e in result.events if isinstance(e, ToolCall)]
    assert result.events.index(call) == len(result.events) - 2


async def test_two_parallel_tool_calls(connect: Callable[..., Any], wire: Wire) -> None:
    provider, _ = await connect(Reply(wire.render(Turn(calls=(WEATHER, CLOCK), end="tool_calls"))))
    result = await collect_events(provider.stream(HELLO))
    events, calls = normalized(result.events, wire)
    assert events == [*deltas("#0", WEATHER), *deltas("#1", CLOCK), final(wire, "tool_calls")]
    assert calls == [whole("#0", WEATHER, {"city": "Zürich"}), whole("#1", CLOCK, {"tz": "Europe/Paris"})]
    # Each call comes after its own deltas, once.
    for call in (e for e in result.events if isinstance(e, ToolCall)):
        own = [
            i
            for i, e in enumerate(result.events)
            if isinstance(e, ToolCallDelta) and e.internal_call_id == call.internal_call_id
        ]
        assert result.events.index(call) > max(own)


async def test_usage_is_reported_in_full(connect: Callable[..., Any], wire: Wire) -> None:
    provider, _ = await connect(Reply(wire.render(Turn(text=("ok",)))))
    result = await collect_events(provider.stream(HELLO))
    (end,) = [e for e in result.events if isinstance(e, Final)]
    assert end.usage == wire.usage()
    assert (end.usage.input_tokens, end.usage.cached_input_tokens, end.usage.total_tokens) == (37, 5, 48)


async def test_refusal(connect: Callable[..., Any], wire: Wire) -> None:
    provider, _ = await connect(Reply(wire.render(Turn(refusal=("I can't help with that.",), end="refusal"))))
    result = await collect_events(provider.stream(HELLO))
    assert normalized(result.events, wire) == (
        [TextDelta(text="I can't help with that."), final(wire, "refusal")],
        [],
    )


async def test_incomplete_at_the_length_limit(connect: Callable[..., Any], wire: Wire) -> None:
    provider, _ = await connect(Reply(wire.render(Turn(text=("Once upon",), end="length"))))
    result = await collect_events(provider.stream(HELLO))
    assert result.completed, "a length cut is a real end of the turn"
    assert normalized(result.events, wire) == ([TextDelta(text="Once upon"), final(wire, "length")], [])


async def test_in_stream_error(connect: Callable[..., Any], wire: Wire) -> None:
    provider, server = await connect(Reply(wire.render(Turn(text=("Hel",), end="error"))))
    result = await collect_events(provider.stream(HELLO))
    assert normalized(result.events, wire) == ([TextDelta(text="Hel")], [])
    error = result.error
    assert isinstance(error, ProviderError)
    assert (error.status, error.message, (error.type, error.code)) == (
        None,
        ERROR_MESSAGE,
        wire.error_type_code,
    )
    assert len(server.requests) == 1


async def test_in_stream_error_after_a_whole_call_never_reports_a_partial_one(
    connect: Callable[..., Any], wire: Wire
) -> None:
    provider, _ = await connect(Reply(wire.render(Turn(calls=(WEATHER,), end="error"))))
    result = await collect_events(provider.stream(HELLO))
    assert isinstance(result.error, ProviderError)
    assert not any(isinstance(e, Final) for e in result.events)
    calls = [e for e in result.events if isinstance(e, ToolCall)]
    # Servers that mark a call's end report it whole before the error; Chat has no such mark,
    # so its open call is dropped with the error.
    assert len(calls) == (1 if wire.reasoning_block else 0)


@pytest.mark.parametrize(
    "turn", [Turn(text=("Hel", "lo"), end="cut"), Turn(end="cut")], ids=["after-text", "before-content"]
)
async def test_truncated_before_the_end_marker(connect: Callable[..., Any], wire: Wire, turn: Turn) -> None:
    provider, server = await connect(Reply(wire.render(turn)))
    result = await collect_events(provider.stream(HELLO))
    assert normalized(result.events, wire) == ([TextDelta(text=p) for p in turn.text], [])
    assert isinstance(result.error, StreamTruncatedError)
    assert str(result.error) == (
        f"the {wire.name} stream ended before {provider.dialect.end_of_turn} [POST {provider.url}]"
    )
    assert result.error.partial is not None and result.error.partial.text == "".join(turn.text)
    assert len(server.requests) == 1


async def test_truncated_with_an_open_tool_call_dispatches_nothing(
    connect: Callable[..., Any], wire: Wire
) -> None:
    pieces = wire.render(Turn(calls=(WEATHER,), end="cut"))
    # Cut inside the call: before its end mark (or, for Chat, before any finish reason).
    provider, _ = await connect(Reply(pieces[:-2]))
    result = await collect_events(provider.stream(HELLO))
    assert isinstance(result.error, StreamTruncatedError)
    assert not any(isinstance(e, ToolCall | Final) for e in result.events)


# -- a two-turn agent run -----------------------------------------------------------------


@tool
def get_weather(city: str) -> str:
    """The weather in a city.

    Args:
        city: The city's name.
    """
    return f"Sunny in {city}"


def second_request(wire: Wire) -> dict[str, Any]:
    """The exact body each provider must receive for the agent's second turn."""
    parameters = dict(get_weather.parameters)
    if wire.name == "openai-chat":
        return {
            "model": CHAT_MODEL,
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Weather in Zürich?"},
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [
                        {
                            "id": "call_0",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city":"Zürich"}'},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "call_0", "content": "Sunny in Zürich"},
            ],
            "stream": True,
            "stream_options": {"include_usage": True},
            "tools": [
                {
                    "type": "function",
                    "function": {
                        "name": "get_weather",
                        "description": "The weather in a city.",
                        "parameters": parameters,
                    },
                }
            ],
        }
    if wire.name == "openai-responses":
        return {
            "model": RESP_MODEL,
            "input": [
                {"type": "message", "role": "user", "content": "Weather in Zürich?"},
                {
                    "type": "reasoning",
                    "id": "rs_0",
                    "summary": [{"type": "summary_text", "text": "Need the weather tool."}],
                    "encrypted_content": "gAAAAABo-rs0==",
                },
                {
                    "type": "function_call",
                    "call_id": "call_0",
                    "name": "get_weather",
                    "arguments": '{"city":"Zürich"}',
                    "id": "fc_0",
                },
                {"type": "function_call_output", "call_id": "call_0", "output": "Sunny in Zürich"},
            ],
            "stream": True,
            "instructions": "Be brief.",
            "tools": [
                {
                    "type": "function",
                    "name": "get_weather",
                    "description": "The weather in a city.",
                    "parameters": parameters,
                }
            ],
        }
    return {
        "model": CLAUDE,
        "max_tokens": 4096,
        "messages": [
            {"role": "user", "content": "Weather in Zürich?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "Need the weather tool.", "signature": "EqQBCgIYAhIM=="},
                    {"type": "tool_use", "id": "toolu_0", "name": "get_weather", "input": {"city": "Zürich"}},
                ],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "toolu_0", "content": "Sunny in Zürich"}],
            },
        ],
        "stream": True,
        "system": "Be brief.",
        "tools": [
            {"name": "get_weather", "description": "The weather in a city.", "input_schema": parameters}
        ],
    }


async def test_two_turn_agent_run_sends_each_providers_exact_second_request(
    connect: Callable[..., Any], wire: Wire
) -> None:
    first = Turn(reasoning=("Need the", " weather tool."), calls=(WEATHER,), end="tool_calls")
    provider, server = await connect(Reply(wire.render(first)), Reply(wire.render(Turn(text=("Sunny.",)))))
    agent = Agent(provider, preamble="Be brief.", tools=[get_weather])
    result = await collect_events(agent.stream_prompt("Weather in Zürich?"))
    assert result.completed, result.error
    assert len(server.requests) == 2
    assert server.requests[1].json == second_request(wire)
    (tool_result,) = [e for e in result.events if isinstance(e, ToolResult)]
    (call,) = [e for e in result.events if isinstance(e, ToolCall)]
    assert (tool_result.call_id, tool_result.internal_call_id, tool_result.content) == (
        wire.ids(0)[1],
        call.internal_call_id,
        "Sunny in Zürich",
    )
    last = result.events[-1]
    assert isinstance(last, FinalResponse)
    assert (last.text, last.turns, last.usage) == ("Sunny.", 2, wire.usage() + wire.usage())
