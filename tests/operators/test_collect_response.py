from collections.abc import Iterator

import reactivex
from reactivex import Observable
from reactivex import operators as ops
from reactivex.notification import OnError
from reactivex.testing import ReactiveTest, TestScheduler
from reactivex.testing.marbles import marbles_testing

from rxllm.errors import StreamTruncatedError
from rxllm.events import (
    AssistantEvent,
    Final,
    Reasoning,
    ReasoningDelta,
    Retrying,
    StreamReset,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from rxllm.messages import Message, ReasoningPart, TextPart, ToolCallPart
from rxllm.operators import collect_response
from rxllm.response import CompletionResponse

on_next, on_completed, subscribe = ReactiveTest.on_next, ReactiveTest.on_completed, ReactiveTest.subscribe

usage = Usage(input_tokens=10, output_tokens=4, total_tokens=14)
weather = ToolCall(id="call_a", call_id="call_a", internal_call_id="rx_a", name="weather", arguments={"q": 1})
clock = ToolCall(id="call_b", call_id="call_b", internal_call_id="rx_b", name="clock")
values: dict[str | float, object] = {
    "a": TextDelta(text="Hel"),
    "b": TextDelta(text="lo"),
    "d": ToolCallDelta(id="call_a", internal_call_id="rx_a", name="weather", arguments_delta='{"q":1}'),
    "c": weather,
    "k": clock,
    "f": Final(usage=usage, finish_reason="tool_calls", response_id="resp_1", model="m-1"),
}


def test_one_response_at_completion() -> None:
    local: dict[str | float, object] = {
        **values,
        "r": CompletionResponse(
            text="Hello",
            tool_calls=(weather, clock),
            usage=usage,
            finish_reason="tool_calls",
            response_id="resp_1",
            model="m-1",
            usage_complete=True,
        ),
    }
    with marbles_testing() as (start, cold, _hot, exp):
        source = cold("-a-b-d-c-k-f-|", local, None)
        assert start(source.pipe(collect_response())) == exp("-------------(r,|)", local, None)


def test_an_empty_turn_gives_an_empty_response() -> None:
    local: dict[str | float, object] = {"r": CompletionResponse()}
    with marbles_testing() as (start, cold, _hot, exp):
        assert start(cold("--|", local, None).pipe(collect_response())) == exp("--(r,|)", local, None)
    assert CompletionResponse() == CompletionResponse(
        text="",
        reasoning="",
        reasoning_blocks=(),
        tool_calls=(),
        usage=None,
        finish_reason=None,
        response_id=None,
        model=None,
        usage_complete=False,
    )


def test_a_turn_without_usage_has_none_and_is_not_complete() -> None:
    # A server that reports no usage: unknown, never zeros.
    local: dict[str | float, object] = {
        "s": Final(finish_reason="stop"),
        "r": CompletionResponse(text="Hel", finish_reason="stop", usage=None, usage_complete=False),
        "a": TextDelta(text="Hel"),
    }
    with marbles_testing() as (start, cold, _hot, exp):
        assert start(cold("-a-s-|", local, None).pipe(collect_response())) == exp("-----(r,|)", local, None)


def test_a_final_that_leaves_an_attempt_out_makes_the_response_incomplete() -> None:
    local: dict[str | float, object] = {
        "f": Final(usage=usage, finish_reason="stop", usage_complete=False),
        "r": CompletionResponse(usage=usage, finish_reason="stop", usage_complete=False),
    }
    with marbles_testing() as (start, cold, _hot, exp):
        assert start(cold("-f-|", local, None).pipe(collect_response())) == exp("---(r,|)", local, None)


def test_retrying_does_not_disturb_the_response() -> None:
    local: dict[str | float, object] = {
        **values,
        "w": Retrying(attempt=2, delay=0.5, reason="HTTP 503", status=503),
        "r": CompletionResponse(
            text="Hello",
            tool_calls=(weather,),
            usage=usage,
            finish_reason="tool_calls",
            response_id="resp_1",
            model="m-1",
            usage_complete=True,
        ),
    }
    with marbles_testing() as (start, cold, _hot, exp):
        source = cold("-w-a-w-b-c-f-|", local, None)
        assert start(source.pipe(collect_response())) == exp("-------------(r,|)", local, None)


def test_several_finals_merge() -> None:
    local: dict[str | float, object] = {
        "s": Final(finish_reason="stop", model="m-1"),
        "u": Final(usage=usage),
        "v": Final(usage=usage, response_id="resp_9"),
        "r": CompletionResponse(
            usage=usage, finish_reason="stop", response_id="resp_9", model="m-1", usage_complete=True
        ),
    }
    with marbles_testing() as (start, cold, _hot, exp):
        source = cold("-s-u-v-|", local, None)
        assert start(source.pipe(collect_response())) == exp("-------(r,|)", local, None)


def test_reasoning_deltas_are_joined() -> None:
    local: dict[str | float, object] = {
        "x": ReasoningDelta(text="Think"),
        "y": ReasoningDelta(text="ing."),
        "a": TextDelta(text="Hi"),
        "r": CompletionResponse(
            text="Hi", reasoning="Thinking.", reasoning_blocks=(Reasoning(text="Thinking."),)
        ),
    }
    with marbles_testing() as (start, cold, _hot, exp):
        source = cold("-x-y-a-|", local, None)
        assert start(source.pipe(collect_response())) == exp("-------(r,|)", local, None)


def test_a_reasoning_block_replaces_its_deltas_never_double_counted() -> None:
    # The Responses API sends the summary deltas and then the completed block with the same id.
    local: dict[str | float, object] = {
        "x": ReasoningDelta(text="Plan: ", id="rs_1"),
        "y": ReasoningDelta(text="call weather", id="rs_1"),
        "z": Reasoning(text="Plan: call weather.", id="rs_1", encrypted_content="gAAA"),
        "w": ReasoningDelta(text=" Then answer.", id="rs_2"),
        "r": CompletionResponse(
            reasoning="Plan: call weather. Then answer.",
            reasoning_blocks=(
                Reasoning(text="Plan: call weather.", id="rs_1", encrypted_content="gAAA"),
                Reasoning(text=" Then answer.", id="rs_2"),
            ),
        ),
    }
    with marbles_testing() as (start, cold, _hot, exp):
        source = cold("-x-y-z-w-|", local, None)
        assert start(source.pipe(collect_response())) == exp("---------(r,|)", local, None)


def test_reasoning_blocks_without_id_each_replace_their_own_deltas() -> None:
    # Anthropic: thinking deltas, then the signed block; a second block later in the turn.
    local: dict[str | float, object] = {
        "x": ReasoningDelta(text="one"),
        "X": Reasoning(text="one", signature="sig1"),
        "y": ReasoningDelta(text="two"),
        "Y": Reasoning(text="two", signature="sig2"),
        "b": Reasoning(text="three"),
        "r": CompletionResponse(
            reasoning="onetwothree",
            reasoning_blocks=(
                Reasoning(text="one", signature="sig1"),
                Reasoning(text="two", signature="sig2"),
                Reasoning(text="three"),
            ),
        ),
    }
    with marbles_testing() as (start, cold, _hot, exp):
        source = cold("-x-X-y-Y-b-|", local, None)
        assert start(source.pipe(collect_response())) == exp("-----------(r,|)", local, None)


def test_tool_call_deltas_are_ignored() -> None:
    local: dict[str | float, object] = {**values, "r": CompletionResponse(text="Hello")}
    with marbles_testing() as (start, cold, _hot, exp):
        source = cold("-a-d-b-|", local, None)
        assert start(source.pipe(collect_response())) == exp("-------(r,|)", local, None)


def test_stream_reset_clears_everything_gathered() -> None:
    local: dict[str | float, object] = {
        **values,
        "x": ReasoningDelta(text="old thought"),
        "s": StreamReset(attempt=1, reason="connection reset"),
        "r": CompletionResponse(text="lo"),
    }
    with marbles_testing() as (start, cold, _hot, exp):
        source = cold("-a-x-c-f-s-b-|", local, None)
        assert start(source.pipe(collect_response())) == exp("-------------(r,|)", local, None)


def test_error_passes_through_and_nothing_is_emitted() -> None:
    cut = StreamTruncatedError("connection closed before [DONE]")
    with marbles_testing() as (start, cold, _hot, exp):
        results = start(cold("-a-c-#", values, cut).pipe(collect_response()))
        assert results == exp("-----#", values, cut)
    last = results[-1].value
    assert isinstance(last, OnError)
    assert last.exception is cut


def test_dispose_unsubscribes_the_source() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_hot_observable(on_next(210, TextDelta(text="Hi")), on_completed(400))
    results = scheduler.start(lambda: xs.pipe(collect_response()), disposed=300)
    assert results.messages == []
    assert xs.subscriptions == [subscribe(200, 300)]


def test_resubscribing_starts_clean() -> None:
    cut = StreamTruncatedError("connection closed before [DONE]")
    with marbles_testing() as (start, cold, _hot, _exp):
        attempts: Iterator[Observable[AssistantEvent]] = iter(
            [cold("-a-c-x-#", {**values, "x": ReasoningDelta(text="hm")}, cut), cold("-b-f-|", values, None)]
        )
        source: Observable[AssistantEvent] = reactivex.defer(lambda _: next(attempts))
        results = start(source.pipe(collect_response(), ops.retry(2)))
    response = CompletionResponse(
        text="lo",
        usage=usage,
        finish_reason="tool_calls",
        response_id="resp_1",
        model="m-1",
        usage_complete=True,
    )
    assert results == [on_next(212, response), on_completed(212)]


def test_assistant_message_puts_reasoning_first_then_text_then_calls() -> None:
    response = CompletionResponse(
        text="Let me check.",
        reasoning_blocks=(Reasoning(text="one", signature="sig1"), Reasoning(text="two", id="rs_2")),
        tool_calls=(weather,),
    )
    assert response.assistant_message() == Message(
        role="assistant",
        content=(
            ReasoningPart(text="one", signature="sig1"),
            ReasoningPart(text="two", id="rs_2"),
            TextPart(text="Let me check."),
            ToolCallPart(
                id=weather.id, call_id=weather.call_id, name=weather.name, arguments=weather.arguments
            ),
        ),
    )
