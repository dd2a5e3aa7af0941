from typing import Any

import msgspec
import pytest

from rxllm.errors import CallbackError, RateLimitError, StreamTimeoutError
from rxllm.events import (
    AnyEvent,
    ErrorInfo,
    Final,
    FinalResponse,
    Reasoning,
    ReasoningDelta,
    Retrying,
    StreamReset,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolCallFragment,
    ToolResult,
    Usage,
)
from rxllm.messages import Message, ReasoningPart, ToolCallPart, ToolResultPart

EVERY_EVENT: list[Any] = [
    TextDelta(text="Hi 👋"),
    ReasoningDelta(text="hm", id="rs_1"),
    Reasoning(text="hm.", id="rs_1", signature="sig==", encrypted_content=None),
    ToolCallFragment(index=0, id="call_1", name="add", arguments='{"a"'),
    ToolCallDelta(id="call_1", internal_call_id="rx_1", name="add", arguments_delta='{"a"'),
    ToolCall(id="call_1", call_id="call_1", internal_call_id="rx_1", name="add", arguments={"a": [1, 2]}),
    ToolCall(id="call_2", call_id="call_2", internal_call_id="rx_2", name="add", arguments="{not json"),
    Final(
        usage=Usage(input_tokens=3, output_tokens=4, total_tokens=7),
        finish_reason="stop",
        response_id="r",
        model="m",
    ),
    StreamReset(attempt=2, reason="connection dropped"),
    Retrying(attempt=2, delay=0.5, reason="HTTP 503", status=503),
    Final(usage=None, finish_reason="stop", usage_complete=False),
    ErrorInfo(error_type="RateLimitError", message="HTTP 429: slow", status=429, provider_type="requests"),
    ToolResult(
        id="call_1", call_id="call_1", internal_call_id="rx_1", name="add", content="3", is_error=False
    ),
    FinalResponse(
        text="3",
        usage=Usage(input_tokens=1),
        history=(
            Message.user("add"),
            Message(
                role="assistant",
                content=(
                    ReasoningPart(text="t", signature="s"),
                    ToolCallPart(id="c", call_id="c", name="add", arguments={"a": 1}),
                ),
            ),
            Message(role="tool", content=(ToolResultPart(call_id="c", name="add", content="1"),)),
        ),
        turns=2,
    ),
]


TAGS: dict[type[Any], str] = {
    TextDelta: "text_delta",
    ReasoningDelta: "reasoning_delta",
    Reasoning: "reasoning",
    ToolCallFragment: "tool_call_fragment",
    ToolCallDelta: "tool_call_delta",
    ToolCall: "tool_call",
    Final: "final",
    StreamReset: "stream_reset",
    Retrying: "retrying",
    ErrorInfo: "error",
    ToolResult: "tool_result",
    FinalResponse: "final_response",
}


@pytest.mark.parametrize("event", EVERY_EVENT, ids=lambda e: type(e).__name__)
def test_every_event_round_trips_through_json(event: Any) -> None:
    data = msgspec.json.encode(event)
    assert msgspec.json.decode(data, type=AnyEvent) == event
    assert msgspec.json.decode(data)["type"] == TAGS[type(event)]


def test_events_are_frozen() -> None:
    with pytest.raises(AttributeError):
        TextDelta(text="a").text = "b"  # type: ignore[misc]


def test_usage_adds_field_by_field() -> None:
    a = Usage(input_tokens=1, output_tokens=2, total_tokens=3, cached_input_tokens=4, reasoning_tokens=5)
    b = Usage(input_tokens=10, output_tokens=20, total_tokens=30, cached_input_tokens=40, reasoning_tokens=50)
    assert a + b == Usage(
        input_tokens=11, output_tokens=22, total_tokens=33, cached_input_tokens=44, reasoning_tokens=55
    )
    assert sum([a, b], Usage()) == a + b


def test_usage_updated_keeps_what_the_later_report_leaves_out() -> None:
    # Anthropic: input on message_start, cumulative output on message_delta.
    start = Usage(input_tokens=25, output_tokens=1)
    delta = Usage(output_tokens=15)
    assert start.updated(delta) == Usage(input_tokens=25, output_tokens=15)
    # Repeated usage is not double counted.
    assert delta.updated(delta) == delta


def test_final_updated_merges_pieces_of_a_turn() -> None:
    finish = Final(finish_reason="stop", response_id="r1", model="m")
    usage = Final(usage=Usage(input_tokens=5, output_tokens=2, total_tokens=7), response_id="r1")
    assert finish.updated(usage) == Final(
        usage=Usage(input_tokens=5, output_tokens=2, total_tokens=7),
        finish_reason="stop",
        response_id="r1",
        model="m",
    )


def test_final_updated_keeps_usage_unknown_until_a_piece_reports_some() -> None:
    usage = Usage(input_tokens=5, output_tokens=2, total_tokens=7)
    assert Final(finish_reason="stop").updated(Final(model="m")).usage is None
    assert Final(usage=usage).updated(Final(finish_reason="stop")).usage == usage
    assert Final(finish_reason="stop").updated(Final(usage=usage)).usage == usage
    assert not Final(usage_complete=False).updated(Final(usage=usage)).usage_complete


def test_usage_summed_leaves_out_what_was_not_reported() -> None:
    a, b = Usage(input_tokens=1, total_tokens=1), Usage(output_tokens=2, total_tokens=2)
    assert Usage.summed([a, None, b]) == Usage(input_tokens=1, output_tokens=2, total_tokens=3)
    assert Usage.summed([None, None]) is None
    assert Usage.summed([]) is None
    assert Usage.merged(None, a) == a and Usage.merged(a, None) == a and Usage.merged(None, None) is None


def test_error_info_from_a_provider_error_has_every_field() -> None:
    usage = Usage(input_tokens=9, output_tokens=1, total_tokens=10)
    error = RateLimitError(
        "Rate limit reached",
        status=429,
        type="requests",
        code="rate_limit_exceeded",
        request_id="req_1",
        retry_after=30.0,
        usage=usage,
        method="POST",
        url="https://api.openai.com/v1/chat/completions",
    )
    info = ErrorInfo.from_exception(error)
    assert info == ErrorInfo(
        error_type="RateLimitError",
        message=str(error),
        status=429,
        provider_type="requests",
        code="rate_limit_exceeded",
        request_id="req_1",
        retry_after=30.0,
        usage=usage,
    )
    assert msgspec.json.decode(msgspec.json.encode(info)) == {
        "type": "error",
        "error_type": "RateLimitError",
        "message": "HTTP 429: Rate limit reached (type=requests, code=rate_limit_exceeded) [request id req_1]"
        " [POST https://api.openai.com/v1/chat/completions]",
        "status": 429,
        "provider_type": "requests",
        "code": "rate_limit_exceeded",
        "request_id": "req_1",
        "retry_after": 30.0,
        "usage": {
            "input_tokens": 9,
            "output_tokens": 1,
            "total_tokens": 10,
            "cached_input_tokens": 0,
            "reasoning_tokens": 0,
        },
    }


def test_error_info_from_any_exception() -> None:
    timeout = StreamTimeoutError("idle", 30, usage=Usage(input_tokens=4))
    assert ErrorInfo.from_exception(timeout) == ErrorInfo(
        error_type="StreamTimeoutError",
        message="idle timeout: no progress within 30 s",
        usage=Usage(input_tokens=4),
    )
    assert ErrorInfo.from_exception(ValueError("a bug")) == ErrorInfo(
        error_type="ValueError", message="a bug"
    )
    callback = ErrorInfo.from_exception(CallbackError("on_retry", KeyError("x")))
    assert (callback.error_type, callback.message, callback.usage) == (
        "CallbackError",
        "on_retry raised KeyError: 'x'",
        None,
    )
    # Unknown usage is null, never zeros.
    assert (
        msgspec.json.decode(msgspec.json.encode(ErrorInfo.from_exception(ValueError("x"))))["usage"] is None
    )


def test_events_work_with_match() -> None:
    def describe(event: Any) -> str:
        match event:
            case TextDelta(text=text):
                return f"text {text}"
            case ToolCall(name=name, arguments={"a": a}):
                return f"{name} a={a}"
            case _:
                return "other"

    assert describe(TextDelta(text="x")) == "text x"
    assert (
        describe(ToolCall(id="1", call_id="1", internal_call_id="i", name="f", arguments={"a": 1})) == "f a=1"
    )
