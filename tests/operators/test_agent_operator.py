"""Marble tests of the agent operator with a fake model that returns cold observables per turn.

Tools and hooks run as asyncio tasks, which a virtual-time scheduler cannot
drive; their paths are tested against a loopback server in tests/test_agent.py.
Here: the Rx shape of a run — ordering, deferral, history carried between
prompts, errors and disposal.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest
import reactivex
from reactivex import Observable
from reactivex.notification import OnError, OnNext
from reactivex.testing import ReactiveTest, TestScheduler
from reactivex.testing.marbles import marbles_testing
from reactivex.testing.recorded import Recorded

from rxllm.control import PauseControl
from rxllm.errors import MaxTurnsError, ProviderError
from rxllm.events import (
    AssistantEvent,
    Final,
    FinalResponse,
    Retrying,
    StreamReset,
    TextDelta,
    ToolCall,
    Usage,
)
from rxllm.messages import Message, ToolCallPart
from rxllm.operators import agent
from rxllm.request import CompletionRequest

on_next, on_completed, subscribe = ReactiveTest.on_next, ReactiveTest.on_completed, ReactiveTest.subscribe


class FakeModel:
    """Each ``stream()`` call takes the next turn factory; the requests are recorded."""

    def __init__(self, turns: Sequence[Callable[[], Observable[AssistantEvent]]]) -> None:
        self.turns = list(turns)
        self.requests: list[CompletionRequest] = []

    def stream(
        self, request: CompletionRequest, *, pause: PauseControl | None = None
    ) -> Observable[AssistantEvent]:
        self.requests.append(request)
        return self.turns[len(self.requests) - 1]()


def error_of(record: Recorded[Any]) -> Exception:
    assert isinstance(record.value, OnError)
    return record.value.exception


a, b = TextDelta(text="Hel"), TextDelta(text="lo")
F_USAGE = Usage(input_tokens=3, output_tokens=2, total_tokens=5)
f = Final(usage=F_USAGE, finish_reason="stop")
call = ToolCall(id="c1", call_id="c1", internal_call_id="rx_1", name="clock", arguments={})
t = Final(usage=Usage(input_tokens=4, output_tokens=1, total_tokens=5), finish_reason="tool_calls")
hello = FinalResponse(
    text="Hello",
    usage=F_USAGE,
    history=(Message.user("hi"), Message.assistant("Hello")),
    turns=1,
)
values: dict[str | float, object] = {"a": a, "b": b, "f": f, "F": hello, "c": call, "t": t}


def test_a_text_run_ends_with_one_final_response() -> None:
    with marbles_testing() as (start, cold, _hot, exp):
        model = FakeModel([lambda: cold("-a-b-f-|", values, None)])
        prompts = cold("p|", {"p": "hi"}, None)
        assert start(prompts.pipe(agent(model))) == exp("-a-b-f-(F,|)", values, None)
    assert [request.messages for request in model.requests] == [(Message.user("hi"),)]


def test_prompts_are_answered_in_turn_carrying_history() -> None:
    second = FinalResponse(
        text="Hello",
        usage=F_USAGE,
        history=(*hello.history, Message.user("again"), Message.assistant("Hello")),
        turns=1,
    )
    with marbles_testing() as (start, cold, hot, exp):
        model = FakeModel([lambda: cold("-a-b-f-|", values, None)] * 2)
        # "again" arrives while the first run streams: it waits for that run to end.
        prompts = hot("--p-q------|", {"p": "hi", "q": "again"}, None)
        result = start(prompts.pipe(agent(model, preamble="Be kind.")))
    assert result == [
        on_next(203, a),
        on_next(205, b),
        on_next(207, f),
        on_next(209, hello),
        on_next(210, a),
        on_next(212, b),
        on_next(214, f),
        on_next(216, second),
        on_completed(216),
    ]
    assert model.requests[1].messages == (*hello.history, Message.user("again"))
    assert model.requests[1].preamble == "Be kind."


def test_history_given_to_the_operator_starts_the_first_run() -> None:
    earlier = (Message.user("I am Ada."), Message.assistant("Hi Ada."))
    with marbles_testing() as (start, cold, _hot, exp):
        model = FakeModel([lambda: cold("-f-|", values, None)])
        start(cold("p|", {"p": "Name?"}, None).pipe(agent(model, history=earlier)))
    assert model.requests[0].messages == (*earlier, Message.user("Name?"))


def test_a_model_error_ends_the_run_with_it() -> None:
    error = ProviderError("overloaded", status=529)
    with marbles_testing() as (start, cold, _hot, exp):
        model = FakeModel([lambda: cold("-a-#", values, error)])
        result = start(cold("p|", {"p": "hi"}, None).pipe(agent(model)))
        assert result == exp("-a-#", values, error)


def test_max_turns_zero_sends_no_request() -> None:
    with marbles_testing() as (start, cold, _hot, exp):
        model = FakeModel([])
        (record,) = start(cold("p|", {"p": "hi"}, None).pipe(agent(model, max_turns=0)))
    assert model.requests == []
    error = error_of(record)
    assert isinstance(error, MaxTurnsError)
    assert error.history == (Message.user("hi"),)


def test_the_last_allowed_turn_calling_tools_is_max_turns_error() -> None:
    with marbles_testing() as (start, cold, _hot, exp):
        model = FakeModel([lambda: cold("-c-t-|", values, None)])
        records = start(cold("p|", {"p": "hi"}, None).pipe(agent(model, max_turns=1)))
    assert [type(r.value) for r in records] == [OnNext, OnNext, OnError]
    error = error_of(records[-1])
    assert isinstance(error, MaxTurnsError) and error.max_turns == 1
    assert error.history[1] == Message(
        role="assistant", content=(ToolCallPart(id="c1", call_id="c1", name="clock", arguments={}),)
    )
    assert len(model.requests) == 1


@pytest.mark.parametrize("reason", ["length", "max_tokens", "incomplete:max_output_tokens"])
def test_a_turn_cut_by_its_output_limit_ends_the_run_without_its_tools(reason: str) -> None:
    # Chat Completions, Anthropic and the Responses dialect each say it in their own words.
    cut_usage = Usage(input_tokens=4, output_tokens=1, total_tokens=5)
    cut = Final(usage=cut_usage, finish_reason=reason)
    cut_response = FinalResponse(
        text="", usage=cut_usage, history=(Message.user("hi"), Message(role="assistant")), turns=1
    )
    local: dict[str | float, object] = {**values, "x": cut, "R": cut_response}
    with marbles_testing() as (start, cold, _hot, exp):
        model = FakeModel([lambda: cold("-c-x-|", local, None)])
        assert start(cold("p|", {"p": "hi"}, None).pipe(agent(model))) == exp("-c-x-(R,|)", local, None)


def test_the_next_turn_is_requested_only_when_subscribed() -> None:
    with marbles_testing() as (start, cold, _hot, _exp):
        model = FakeModel([lambda: cold("-f-|", values, None)])
        stream = cold("p|", {"p": "hi"}, None).pipe(agent(model))
        assert model.requests == []
        start(stream)
    assert len(model.requests) == 1


def test_dispose_unsubscribes_the_turn_stream() -> None:
    scheduler = TestScheduler()
    turn = scheduler.create_cold_observable(on_next(10, a), on_next(500, b), on_completed(600))
    model = FakeModel([lambda: turn])
    prompts = scheduler.create_cold_observable(on_next(0, "hi"), on_completed(1))
    results = scheduler.start(lambda: prompts.pipe(agent(model)), disposed=300)
    assert results.messages == [on_next(210, a)]
    assert turn.subscriptions == [subscribe(200, 300)]


def test_resubscribing_runs_again_from_the_start() -> None:
    # Each subscription starts from the operator's own history, not from the last run's.
    turn = FinalResponse(
        text="", usage=F_USAGE, history=(Message.user("hi"), Message(role="assistant")), turns=1
    )
    with marbles_testing() as (start, cold, _hot, exp):
        model = FakeModel([lambda: cold("-f-|", values, None)] * 2)
        stream = cold("p|", {"p": "hi"}, None).pipe(agent(model))
        result = start(reactivex.concat(stream, stream))
    assert result == [
        on_next(201, f),
        on_next(203, turn),
        on_next(204, f),
        on_next(206, turn),
        on_completed(206),
    ]
    assert [r.messages for r in model.requests] == [(Message.user("hi"),), (Message.user("hi"),)]


def test_a_stream_reset_discards_the_turn_so_far() -> None:
    # The discarded attempt streamed a whole tool call; after the reset the turn is text only, so the
    # call never runs, the history never holds it and the run ends after this turn.
    reset = StreamReset(attempt=2, reason="connection lost mid-stream")
    local: dict[str | float, object] = {**values, "R": reset}
    with marbles_testing() as (start, cold, _hot, exp):
        model = FakeModel([lambda: cold("-c-R-a-b-f-|", local, None)])
        result = start(cold("p|", {"p": "hi"}, None).pipe(agent(model, max_turns=1)))
        assert result == exp("-c-R-a-b-f-(F,|)", local, None)
    assert len(model.requests) == 1


def test_retrying_passes_through_and_the_run_is_as_without_it() -> None:
    w = Retrying(attempt=2, delay=0.5, reason="HTTP 503", status=503)
    local: dict[str | float, object] = {**values, "w": w}
    with marbles_testing() as (start, cold, _hot, exp):
        model = FakeModel([lambda: cold("-w-a-b-f-|", local, None)])
        result = start(cold("p|", {"p": "hi"}, None).pipe(agent(model)))
        assert result == exp("-w-a-b-f-(F,|)", local, None)


def test_a_turn_without_usage_makes_the_final_response_incomplete() -> None:
    silent = Final(finish_reason="stop", usage_complete=False)
    unknown = FinalResponse(
        text="Hello",
        usage=Usage(),
        history=(Message.user("hi"), Message.assistant("Hello")),
        turns=1,
        usage_complete=False,
    )
    local: dict[str | float, object] = {**values, "n": silent, "U": unknown}
    with marbles_testing() as (start, cold, _hot, exp):
        model = FakeModel([lambda: cold("-a-b-n-|", local, None)])
        assert start(cold("p|", {"p": "hi"}, None).pipe(agent(model))) == exp("-a-b-n-(U,|)", local, None)


def test_max_turns_error_carries_the_usage_of_its_turns() -> None:
    with marbles_testing() as (start, cold, _hot, exp):
        model = FakeModel([lambda: cold("-c-t-|", values, None)])
        records = start(cold("p|", {"p": "hi"}, None).pipe(agent(model, max_turns=1)))
    error = error_of(records[-1])
    assert isinstance(error, MaxTurnsError) and error.usage == t.usage


def test_the_error_of_a_first_turn_keeps_the_usage_its_stream_gave_it() -> None:
    usage = Usage(input_tokens=9, total_tokens=9)
    error = ProviderError("overloaded", type="overloaded_error", usage=usage)
    unknown = ProviderError("overloaded", type="overloaded_error")
    for failure in (error, unknown):
        with marbles_testing() as (start, cold, _hot, _exp):
            model = FakeModel([lambda: cold("-a-#", values, failure)])  # noqa: B023 - called at once
            start(cold("p|", {"p": "hi"}, None).pipe(agent(model)))
    assert (error.usage, unknown.usage) == (usage, None), "no earlier turn: nothing is added"
