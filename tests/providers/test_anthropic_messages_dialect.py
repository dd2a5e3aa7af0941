"""The Anthropic Messages dialect, fed events shaped as the API documents them."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

import msgspec
import pytest
from loguru import logger

import rxllm
from rxllm.errors import (
    AuthenticationError,
    BadRequestError,
    ChunkDecodeError,
    InternalServerError,
    NotFoundError,
    OverloadedError,
    PermissionDeniedError,
    ProviderError,
    RateLimitError,
)
from rxllm.events import (
    AssistantEvent,
    ChunkEvent,
    Final,
    Reasoning,
    ReasoningDelta,
    TextDelta,
    ToolCall,
    ToolCallFragment,
    Usage,
)
from rxllm.operators._accumulate_tool_calls import _ToolCalls
from rxllm.providers._anthropic_messages import AnthropicMessagesDialect, AnthropicMessagesParser

MSG = "msg_01XFDUDYJgAACzvnptvVoYEL"
MODEL = "claude-sonnet-4-5-20250929"


def data(type: str, **fields: Any) -> str:
    return msgspec.json.encode({"type": type, **fields}).decode()


def message_start(**usage: int) -> str:
    return data(
        "message_start",
        message={
            "id": MSG,
            "type": "message",
            "role": "assistant",
            "content": [],
            "model": MODEL,
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 25, "output_tokens": 1, **usage},
        },
    )


def block_start(index: int, **block: Any) -> str:
    return data("content_block_start", index=index, content_block=block)


def block_delta(index: int, **delta: Any) -> str:
    return data("content_block_delta", index=index, delta=delta)


def block_stop(index: int) -> str:
    return data("content_block_stop", index=index)


def message_delta(stop_reason: str, output_tokens: int) -> str:
    return data(
        "message_delta",
        delta={"stop_reason": stop_reason, "stop_sequence": None},
        usage={"output_tokens": output_tokens},
    )


MESSAGE_STOP = data("message_stop")
PING = data("ping")


def accumulated(events: Iterable[ChunkEvent]) -> list[AssistantEvent]:
    """The events as ``accumulate_tool_calls`` makes them (its step class, without a stream)."""
    calls = _ToolCalls()
    return [out for event in events for out in calls.feed(event)]


def feed_all(lines: Iterable[str], parser: AnthropicMessagesParser | None = None) -> list[ChunkEvent]:
    parser = parser if parser is not None else AnthropicMessagesDialect().parser()
    events: list[ChunkEvent] = []
    for line in lines:
        events.extend(parser.feed(msgspec.json.decode(line)["type"], line))
    return events


@pytest.fixture
def debug_log() -> Iterator[list[str]]:
    messages: list[str] = []
    rxllm.enable_logging()
    sink = logger.add(lambda message: messages.append(message.record["message"]), level="DEBUG")
    yield messages
    logger.remove(sink)
    rxllm.disable_logging()


def test_dialect_name_and_a_fresh_parser_each_time() -> None:
    dialect = AnthropicMessagesDialect()
    first, second = dialect.parser(), dialect.parser()
    first.feed("message_stop", MESSAGE_STOP)
    assert (dialect.name, dialect.end_of_turn) == ("anthropic-messages", "message_stop")
    assert (first.done, first.finished) == (True, True)
    assert (second.done, second.finished) == (False, False)


def test_text_with_ping_between_blocks() -> None:
    parser = AnthropicMessagesDialect().parser()
    lines = [
        message_start(),
        block_start(0, type="text", text=""),
        PING,
        block_delta(0, type="text_delta", text="Hello"),
        block_delta(0, type="text_delta", text="!"),
        block_stop(0),
        message_delta("end_turn", 15),
    ]
    assert feed_all(lines, parser) == [
        Final(usage=Usage(input_tokens=25, output_tokens=1, total_tokens=26), response_id=MSG, model=MODEL),
        TextDelta(text="Hello"),
        TextDelta(text="!"),
        Final(usage=Usage(input_tokens=25, output_tokens=15, total_tokens=40), finish_reason="end_turn"),
    ]
    assert (parser.done, parser.finished) == (False, False), (
        "message_stop, not the stop reason, ends the turn"
    )
    assert parser.feed("message_stop", MESSAGE_STOP) == ()
    assert (parser.done, parser.finished) == (True, True)


def test_usage_split_over_message_start_and_message_delta() -> None:
    # Input counts arrive on message_start, cumulative output on message_delta; Anthropic counts
    # cache reads and writes apart from input_tokens, rxllm sums them into the prompt's size.
    lines = [
        message_start(cache_read_input_tokens=100, cache_creation_input_tokens=20),
        message_delta("end_turn", 7),
        data(
            "message_delta",
            delta={"stop_reason": "end_turn", "stop_sequence": None},
            usage={"output_tokens": 9},
        ),
    ]
    *_, last = feed_all(lines)
    assert last == Final(
        usage=Usage(input_tokens=145, output_tokens=9, total_tokens=154, cached_input_tokens=100),
        finish_reason="end_turn",
    )


def test_tool_use_fragments_end_at_block_stop_and_accumulate_into_the_call() -> None:
    lines = [
        block_start(1, type="tool_use", id="toolu_01", name="get_weather", input={}),
        block_delta(1, type="input_json_delta", partial_json=""),
        block_delta(1, type="input_json_delta", partial_json='{"location": "San Fra'),
        block_delta(1, type="input_json_delta", partial_json='ncisco, CA"}'),
        block_stop(1),
        message_delta("tool_use", 89),
    ]
    events = feed_all(lines)
    # Fragments only: the dialect passes the input on; accumulate_tool_calls joins and parses it.
    assert events[:-1] == [
        ToolCallFragment(index=1, id="toolu_01", name="get_weather"),
        ToolCallFragment(index=1, id="toolu_01", arguments='{"location": "San Fra'),
        ToolCallFragment(index=1, id="toolu_01", arguments='ncisco, CA"}'),
        ToolCallFragment(index=1, id="toolu_01", end=True),
    ]
    assert isinstance(events[-1], Final) and events[-1].finish_reason == "tool_use"
    (call,) = [event for event in accumulated(events) if isinstance(event, ToolCall)]
    assert (call.id, call.call_id, call.name, call.arguments) == (
        "toolu_01",
        "toolu_01",
        "get_weather",
        {"location": "San Francisco, CA"},
    )


def test_the_call_completes_at_its_block_stop_not_at_the_turns_end() -> None:
    lines = [
        block_start(0, type="tool_use", id="toolu_01", name="a", input={}),
        block_delta(0, type="input_json_delta", partial_json="{}"),
        block_stop(0),
        block_start(1, type="text", text=""),
        block_delta(1, type="text_delta", text="after"),
    ]
    kinds = [type(event).__name__ for event in accumulated(feed_all(lines))]
    assert kinds == ["ToolCallDelta", "ToolCallDelta", "ToolCall", "TextDelta"]


def test_zero_argument_tool_gets_an_empty_object() -> None:
    lines = [
        block_start(0, type="tool_use", id="toolu_02", name="now", input={}),
        block_delta(0, type="input_json_delta", partial_json=""),
        block_stop(0),
    ]
    (call,) = [event for event in accumulated(feed_all(lines)) if isinstance(event, ToolCall)]
    assert (call.id, call.call_id, call.name, call.arguments) == ("toolu_02", "toolu_02", "now", {})


def test_a_tool_use_without_an_id_gets_a_unique_one() -> None:
    lines = [
        block_start(0, type="tool_use", name="now", input={}),
        block_start(1, type="tool_use", name="now", input={}),
        block_stop(0),
        block_stop(1),
    ]
    first, second, end_a, end_b = feed_all(lines)
    assert isinstance(first, ToolCallFragment) and isinstance(second, ToolCallFragment)
    assert first.id is not None and re.fullmatch(r"toolu_[0-9a-f]{32}", first.id)
    assert first.id != second.id
    assert isinstance(end_a, ToolCallFragment) and isinstance(end_b, ToolCallFragment)
    assert (end_a.id, end_a.end, end_b.id, end_b.end) == (first.id, True, second.id, True)
    calls = [event for event in accumulated(feed_all(lines)) if isinstance(event, ToolCall)]
    assert [call.id for call in calls] == [call.call_id for call in calls]
    assert len({call.id for call in calls}) == 2


def test_thinking_deltas_then_reasoning_with_the_signature() -> None:
    lines = [
        block_start(0, type="thinking", thinking="", signature=""),
        block_delta(0, type="thinking_delta", thinking="Let me solve this step by step:\n\n1. "),
        block_delta(0, type="thinking_delta", thinking="First break down 27 * 453"),
        block_delta(0, type="signature_delta", signature="EqQBCgIYAhIM1gbcDa9GJwZA2b3h"),
        block_delta(0, type="signature_delta", signature="GgwLCkFdBRx9aw=="),
        block_stop(0),
    ]
    assert feed_all(lines) == [
        ReasoningDelta(text="Let me solve this step by step:\n\n1. "),
        ReasoningDelta(text="First break down 27 * 453"),
        Reasoning(
            text="Let me solve this step by step:\n\n1. First break down 27 * 453",
            signature="EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgwLCkFdBRx9aw==",
        ),
    ]


def test_redacted_thinking_is_kept_as_encrypted_content() -> None:
    lines = [block_start(0, type="redacted_thinking", data="EmwKAhgBEgy3va3pzix/LafPsn4a"), block_stop(0)]
    assert feed_all(lines) == [Reasoning(text="", encrypted_content="EmwKAhgBEgy3va3pzix/LafPsn4a")]


def test_overloaded_error_after_http_200_keeps_its_type() -> None:
    # anthropic-sdk#1918 loses the type: rxllm keeps "overloaded_error".
    parser = AnthropicMessagesDialect().parser()
    assert feed_all([message_start(), block_start(0, type="text", text="")], parser)
    overloaded = data("error", error={"type": "overloaded_error", "message": "Overloaded"})
    with pytest.raises(ProviderError) as caught:
        parser.feed("error", overloaded)
    error = caught.value
    assert type(error) is OverloadedError
    assert (error.status, error.message, error.type) == (None, "Overloaded", "overloaded_error")
    assert str(error) == "error in stream: Overloaded (type=overloaded_error)"


@pytest.mark.parametrize(
    ("type_", "kind"),
    [
        ("invalid_request_error", BadRequestError),
        ("authentication_error", AuthenticationError),
        ("permission_error", PermissionDeniedError),
        ("not_found_error", NotFoundError),
        ("rate_limit_error", RateLimitError),
        ("api_error", InternalServerError),
        ("overloaded_error", OverloadedError),
        ("request_too_large", ProviderError),
    ],
)
def test_error_events_are_classed_by_their_type(type_: str, kind: type[ProviderError]) -> None:
    event = data("error", error={"type": type_, "message": "no"})
    with pytest.raises(ProviderError) as caught:
        AnthropicMessagesDialect().parser().feed("error", event)
    assert type(caught.value) is kind
    assert (caught.value.type, caught.value.status) == (type_, None)


def test_a_stream_without_usage_reports_none() -> None:
    start = data("message_start", message={"id": MSG, "type": "message", "model": MODEL, "content": []})
    stop = data("message_delta", delta={"stop_reason": "end_turn"})
    assert feed_all([start, stop]) == [
        Final(usage=None, response_id=MSG, model=MODEL),
        Final(usage=None, finish_reason="end_turn"),
    ]


def test_error_with_a_request_id() -> None:
    api_error = data("error", error={"type": "api_error", "message": "Internal error"}, request_id="req_011")
    with pytest.raises(ProviderError) as caught:
        AnthropicMessagesDialect().parser().feed("error", api_error)
    assert (caught.value.type, caught.value.request_id) == ("api_error", "req_011")


def test_stop_reasons_are_kept_verbatim() -> None:
    for reason in ("end_turn", "max_tokens", "stop_sequence", "tool_use", "pause_turn", "refusal"):
        (final,) = feed_all([message_delta(reason, 3)])
        assert isinstance(final, Final) and final.finish_reason == reason


def test_unknown_events_blocks_and_deltas_are_skipped_with_a_debug_log(debug_log: list[str]) -> None:
    lines = [
        data("future_event", payload=1),
        block_start(0, type="server_tool_use", id="srvtoolu_1", name="web_search", input={}),
        block_delta(0, type="input_json_delta", partial_json='{"query": "rxllm"}'),
        block_stop(0),
        block_start(1, type="text", text=""),
        block_delta(1, type="citations_delta", citation={"type": "web_search_result_location"}),
        block_delta(1, type="text_delta", text="ok"),
    ]
    assert feed_all(lines) == [TextDelta(text="ok")]
    assert len(debug_log) == 3
    assert (
        "future_event" in debug_log[0]
        and "server_tool_use" in debug_log[1]
        and "citations_delta" in debug_log[2]
    )


def test_malformed_event_is_a_decode_error() -> None:
    with pytest.raises(ChunkDecodeError):
        AnthropicMessagesDialect().parser().feed(
            "content_block_delta", '{"type":"content_block_delta","index":'
        )
