"""Marble tests of the agent's approval step, where it needs no asyncio: requests, suspension, their order.

Tools run as asyncio tasks, which virtual time cannot drive: the live wait, the
tools and resume are tested against a loopback server (tests/test_approvals.py,
tests/test_run_state.py). Here: where in a run the requests and ``RunSuspended``
come, and what comes instead when the turn cannot go on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, cast

from approval_kit import pay
from reactivex import Observable
from reactivex.notification import OnError
from reactivex.testing import ReactiveTest, TestScheduler
from reactivex.testing.marbles import marbles_testing

from rxllm.control import PauseControl
from rxllm.errors import MaxTurnsError, ProviderError
from rxllm.events import (
    AssistantEvent,
    CallState,
    Final,
    RunState,
    RunSuspended,
    ToolApprovalRequest,
    ToolCall,
    Usage,
)
from rxllm.messages import Message, ToolCallPart
from rxllm.operators import agent
from rxllm.operators._approval_step import fingerprint
from rxllm.request import CompletionRequest
from rxllm.testing import event_values

on_next, subscribe = ReactiveTest.on_next, ReactiveTest.subscribe


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


USAGE = Usage(input_tokens=4, output_tokens=1, total_tokens=5)
ada = ToolCall(
    id="c1", call_id="c1", internal_call_id="rx_1", name="pay", arguments={"to": "Ada", "amount": 120}
)
bob = ToolCall(
    id="c2", call_id="c2", internal_call_id="rx_2", name="pay", arguments={"to": "Bob", "amount": 300}
)
t = Final(usage=USAGE, finish_reason="tool_calls")


def request(call: ToolCall) -> ToolApprovalRequest:
    return ToolApprovalRequest(
        internal_call_id=call.internal_call_id, call_id=call.call_id, name=call.name, arguments=call.arguments
    )


def suspended(*calls: ToolCall) -> RunSuspended:
    return RunSuspended(
        state=RunState(
            prompt="Pay them",
            history=(Message.user("Pay them"),),
            assistant=Message(
                role="assistant",
                content=tuple(
                    ToolCallPart(id=c.id, call_id=c.call_id, name=c.name, arguments=c.arguments)
                    for c in calls
                ),
            ),
            calls=tuple(CallState(call=c, status="pending") for c in calls),
            turns=1,
            usage=USAGE,
            usage_reported=True,
            output_retries_left=1,
            max_turns=10,
            tool_set=fingerprint([pay], None),
            tool_names=("pay",),
        )
    )


values = event_values(
    a=ada, b=bob, t=t, r=request(ada), s=request(bob), S=suspended(ada, bob), T=suspended(ada)
)


PROMPT = {"p": "Pay them"}


def run(cold: Any, model: FakeModel, **options: Any) -> Observable[Any]:
    return cast(Observable[Any], cold("p|", PROMPT, None).pipe(agent(model, tools=[pay], **options)))


def test_the_requests_and_the_suspension_follow_the_turns_end_in_call_order() -> None:
    with marbles_testing() as (start, cold, _hot, exp):
        model = FakeModel([lambda: cold("-a-b-t|", values, None)])
        assert start(run(cold, model, suspend=True)) == exp("-a-b-t(r,s,S,|)", values, None)
    assert len(model.requests) == 1


def test_one_call_one_request() -> None:
    with marbles_testing() as (start, cold, _hot, exp):
        model = FakeModel([lambda: cold("-a-t|", values, None)])
        assert start(run(cold, model, suspend=True)) == exp("-a-t(r,T,|)", values, None)


def test_the_readme_marbles_of_a_suspended_run_hold() -> None:
    from test_readme_approvals import readme_marbles

    turn, expected = readme_marbles("suspended")
    with marbles_testing() as (start, cold, _hot, exp):
        model = FakeModel([lambda: cold(turn, values, None)])
        assert start(run(cold, model, suspend=True)) == exp(expected, values, None)


def test_the_last_allowed_turn_ends_with_max_turns_error_and_no_request() -> None:
    error = MaxTurnsError(1, [])
    with marbles_testing() as (start, cold, _hot, exp):
        model = FakeModel([lambda: cold("-a-t|", values, None)])
        result = start(run(cold, model, suspend=True, max_turns=1))
        assert result == exp("-a-t#", values, error)
    (*_, last) = result
    assert isinstance(last.value, OnError) and isinstance(last.value.exception, MaxTurnsError)


def test_a_turn_that_fails_requests_nothing() -> None:
    error = ProviderError("overloaded", status=529)
    with marbles_testing() as (start, cold, _hot, exp):
        model = FakeModel([lambda: cold("-a-#", values, error)])
        assert start(run(cold, model, suspend=True)) == exp("-a-#", values, error)


def test_dispose_before_the_turn_ends_requests_nothing() -> None:
    scheduler = TestScheduler()
    turn = scheduler.create_cold_observable(on_next(10, ada), on_next(20, t), ReactiveTest.on_completed(30))
    model = FakeModel([lambda: turn])
    prompts = scheduler.create_cold_observable(on_next(0, "Pay them"), ReactiveTest.on_completed(0))
    results = scheduler.start(lambda: prompts.pipe(agent(model, tools=[pay], suspend=True)), disposed=220)
    assert results.messages == [on_next(210, ada)]
    assert turn.subscriptions == [subscribe(200, 220)]
