from typing import Any

import msgspec
import pytest

from rxllm.events import (
    AnyEvent,
    Final,
    FinalResponse,
    Reasoning,
    ReasoningDelta,
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
