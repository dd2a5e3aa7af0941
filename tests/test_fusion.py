"""Operator fusion: rxllm's operators subscribe each other directly and keep Rx's rules themselves."""

from __future__ import annotations

import threading

import reactivex
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.disposable import Disposable
from reactivex.notification import OnCompleted, OnNext
from reactivex.observer import AutoDetachObserver
from reactivex.testing.marbles import marbles_testing

from rxllm._fusion import Fused, Link, Stage
from rxllm.events import Final, TextDelta, ToolCall, ToolCallDelta
from rxllm.operators import accumulate_tool_calls, dedupe_final, parse_chunk
from rxllm.providers._openai_chat import OpenAIChatDialect
from rxllm.sse import SseEvent


class Source(Fused[int]):
    """A fused source the test drives by hand: it keeps each observer it is given and counts disposals."""

    def __init__(self, on_subscribe: str = "") -> None:
        self.observers: list[abc.ObserverBase[int]] = []
        self.disposed = 0
        self.on_subscribe = on_subscribe

    def _subscribe_core(
        self, observer: abc.ObserverBase[int], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        self.observers.append(observer)
        if self.on_subscribe == "complete":
            observer.on_completed()
        elif self.on_subscribe == "raise":
            raise LookupError("no such stream")

        def dispose() -> None:
            self.disposed += 1

        return Disposable(dispose)


def relay(observer: abc.ObserverBase[int], _scheduler: abc.SchedulerBase | None) -> Link[int, int]:
    """A link that passes everything through: Link's own rules and nothing else."""
    return Link(observer)


class Seen:
    def __init__(self) -> None:
        self.items: list[object] = []
        self.errors: list[Exception] = []
        self.completed = 0

    def subscribe(self, observable: Observable[int]) -> abc.DisposableBase:
        return observable.subscribe(self.items.append, self.errors.append, self.count_completed)

    def count_completed(self) -> None:
        self.completed += 1


def test_a_link_subscribes_a_fused_source_directly() -> None:
    source = Source()
    Seen().subscribe(Stage(Stage(source, relay), relay))
    inner = source.observers[0]
    assert type(inner) is Link
    assert type(inner.observer) is Link  # the outer stage's link, no wrapper between
    assert type(inner.observer.observer) is AutoDetachObserver  # the user's subscribe, through Rx


def test_other_sources_are_subscribed_through_rx() -> None:
    seen = Seen()
    seen.subscribe(Stage(reactivex.of(1, 2, 3), relay))
    assert (seen.items, seen.errors, seen.completed) == ([1, 2, 3], [], 1)


def test_nothing_follows_a_terminal_and_the_terminal_disposes_the_source() -> None:
    source, seen = Source(), Seen()
    seen.subscribe(Stage(source, relay))
    observer = source.observers[0]
    observer.on_next(1)
    observer.on_completed()
    assert source.disposed == 1
    observer.on_next(2)
    observer.on_error(RuntimeError("late"))
    observer.on_completed()
    assert (seen.items, seen.errors, seen.completed) == ([1], [], 1)
    assert source.disposed == 1


def test_dispose_reaches_the_source_and_stops_delivery() -> None:
    source, seen = Source(), Seen()
    subscription = seen.subscribe(Stage(Stage(source, relay), relay))
    source.observers[0].on_next(1)
    subscription.dispose()
    assert source.disposed == 1
    source.observers[0].on_next(2)
    source.observers[0].on_completed()
    assert (seen.items, seen.completed) == ([1], 0)


def test_a_source_that_ends_while_subscribing_is_disposed_when_its_subscription_arrives() -> None:
    source, seen = Source(on_subscribe="complete"), Seen()
    seen.subscribe(Stage(source, relay))
    assert seen.completed == 1
    assert source.disposed == 1


def test_an_exception_while_subscribing_is_delivered_as_the_error() -> None:
    seen = Seen()
    seen.subscribe(Stage(Stage(Source(on_subscribe="raise"), relay), relay))
    assert [type(error) for error in seen.errors] == [LookupError]
    assert str(seen.errors[0]) == "no such stream"


def test_the_lock_is_one_reentrant_lock_made_on_first_use() -> None:
    stage: Stage[int] = Stage(reactivex.of(1, 2, 3), relay)
    assert "_lock" not in vars(stage)
    lock = stage.lock
    assert lock is stage.lock
    assert type(lock) is type(threading.RLock())

    # take_while holds its source's lock around the predicate.
    def below_three(value: int) -> bool:
        return value < 3

    seen = Seen()
    seen.subscribe(stage.pipe(ops.take_while(below_three)))
    assert (seen.items, seen.completed) == ([1, 2], 1)


def test_the_turn_operators_fused_over_a_marble_source() -> None:
    """parse_chunk ─► accumulate_tool_calls ─► dedupe_final: the last two subscribe fused."""
    chunk = '{"choices":[{"index":0,"delta":%s,"finish_reason":%s}]}'
    call = '{"tool_calls":[{"index":0,"id":"call_1","function":{"name":"add","arguments":"{}"}}]}'
    events: dict[str | float, object] = {
        "a": SseEvent(data=chunk % ('{"content":"Hi"}', "null")),
        "p": SseEvent(data=chunk % (call, "null")),
        "f": SseEvent(data=chunk % ("{}", '"tool_calls"')),
        "d": SseEvent(data="[DONE]"),
    }
    with marbles_testing() as (start, cold, _hot, _exp):
        source = cold("-a-p-f-d-", events, None)
        recorded = start(
            source.pipe(parse_chunk(OpenAIChatDialect()), accumulate_tool_calls(), dedupe_final())
        )
    notifications = [(record.time, record.value) for record in recorded]
    kinds = [(time, type(notification)) for time, notification in notifications]
    assert kinds == [(201.0, OnNext), (203.0, OnNext), (205.0, OnNext), (207.0, OnNext), (207.0, OnCompleted)]
    text, delta, tool_call, final = (
        notification.value for _time, notification in notifications if isinstance(notification, OnNext)
    )
    assert text == TextDelta(text="Hi")
    assert isinstance(delta, ToolCallDelta)
    assert (delta.id, delta.name, delta.arguments_delta) == ("call_1", "add", "{}")
    assert isinstance(tool_call, ToolCall)
    assert (tool_call.call_id, tool_call.name, tool_call.arguments) == ("call_1", "add", {})
    assert tool_call.internal_call_id == delta.internal_call_id
    assert isinstance(final, Final) and final.finish_reason == "tool_calls"
