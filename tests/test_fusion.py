"""Operator fusion: rxllm's operators subscribe each other directly and keep Rx's rules themselves."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
import reactivex
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.disposable import Disposable
from reactivex.notification import OnCompleted, OnNext
from reactivex.observer import AutoDetachObserver
from reactivex.testing import TestScheduler
from reactivex.testing.marbles import marbles_testing

from rxllm.control import PauseControl
from rxllm.errors import TransportError
from rxllm.events import Final, Retrying, TextDelta, ToolCall, ToolCallDelta
from rxllm.operators import accumulate_tool_calls, dedupe_final, parse_chunk, pause_gate
from rxllm.providers._openai_chat import OpenAIChatDialect
from rxllm.retry import Backoff, RetryPolicy, retry_turn
from rxllm.sse import SseEvent
from rxllm.timeouts import progress_timeout, total_timeout
from rxllm.transport._fusion import Fused, Link, Stage, subscribe_fused


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


# -- Rx's rules, observed with a raw observer ---------------------------------------------------------
#
# ``Observable.subscribe`` wraps the observer in an ``AutoDetachObserver``, which itself drops what
# follows a terminal: a test through it cannot see a stage break the rule. These subscribe each stage
# with ``subscribe_fused`` and a recorder that takes every call, however many arrive.


class Raw(abc.ObserverBase[Any]):
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def on_next(self, value: Any) -> None:
        self.calls.append(("next", value))

    def on_error(self, error: Exception) -> None:
        self.calls.append(("error", type(error)))

    def on_completed(self) -> None:
        self.calls.append(("completed", None))

    @property
    def terminals(self) -> list[str]:
        return [kind for kind, _ in self.calls if kind != "next"]


class HandSource(Fused[Any]):
    """A fused source driven by hand; ``gate`` (when given) holds its subscribe until set."""

    def __init__(self, gate: threading.Event | None = None, entered: threading.Event | None = None) -> None:
        self.observers: list[abc.ObserverBase[Any]] = []
        self.disposed = 0
        self.gate = gate
        self.entered = entered

    def _subscribe_core(
        self, observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        self.observers.append(observer)
        if self.entered is not None:
            self.entered.set()
        if self.gate is not None:
            assert self.gate.wait(10)

        def dispose() -> None:
            self.disposed += 1

        return Disposable(dispose)


CHUNK = SseEvent(data='{"choices":[{"index":0,"delta":{"content":"a"}}]}')
TEXT = TextDelta(text="a")

STAGES: dict[str, tuple[Callable[[Observable[Any]], Observable[Any]], Any]] = {
    "link": (lambda source: Stage(source, relay), 1),
    "parse_chunk": (parse_chunk(OpenAIChatDialect()), CHUNK),
    "accumulate_tool_calls": (accumulate_tool_calls(), TEXT),
    "dedupe_final": (dedupe_final(), TEXT),
    "progress_timeout": (progress_timeout(50, 50), TEXT),
    "total_timeout": (total_timeout(50), TEXT),
    "retry_turn": (retry_turn(RetryPolicy(max_retries=0)), TEXT),
    "pause_gate": (pause_gate(PauseControl()), TEXT),
}


def subscribed(name: str, source: HandSource) -> tuple[Raw, abc.DisposableBase]:
    operator, _item = STAGES[name]
    raw = Raw()
    subscription = subscribe_fused(operator(source), raw, TestScheduler())
    return raw, subscription


@pytest.mark.parametrize("name", STAGES)
@pytest.mark.parametrize("terminal", ["error", "completed"])
def test_a_stage_delivers_one_terminal_nothing_after_it_and_disposes_its_source(
    name: str, terminal: str
) -> None:
    source = HandSource()
    raw, _subscription = subscribed(name, source)
    (upstream,) = source.observers
    item = STAGES[name][1]
    upstream.on_next(item)
    before = len(raw.calls)
    if terminal == "error":
        upstream.on_error(LookupError("gone"))
    else:
        upstream.on_completed()
    assert len(raw.terminals) == 1
    assert source.disposed == 1
    after = len(raw.calls)
    upstream.on_next(item)
    upstream.on_error(RuntimeError("late"))
    upstream.on_completed()
    assert len(raw.calls) == after, f"{name} delivered after its terminal: {raw.calls[after:]}"
    assert after > before
    assert source.disposed == 1


@pytest.mark.parametrize("name", STAGES)
def test_a_disposed_stage_disposes_its_source_once_and_delivers_nothing_more(name: str) -> None:
    source = HandSource()
    raw, subscription = subscribed(name, source)
    (upstream,) = source.observers
    subscription.dispose()
    subscription.dispose()
    assert source.disposed == 1
    upstream.on_next(STAGES[name][1])
    upstream.on_completed()
    assert raw.calls == []


@pytest.mark.parametrize("name", STAGES)
def test_a_dispose_from_another_thread_while_the_source_is_subscribing_reaches_it(name: str) -> None:
    gate, entered = threading.Event(), threading.Event()
    source = HandSource(gate, entered)
    operator, _item = STAGES[name]
    raw = Raw()
    made: list[abc.DisposableBase] = []
    subscribing = threading.Thread(
        target=lambda: made.append(subscribe_fused(operator(source), raw, TestScheduler()))
    )
    subscribing.start()
    assert entered.wait(10)
    # The stage's own disposable is the link the source was given (outermost first for a chain).
    link = source.observers[0]
    while isinstance(link, Link) and isinstance(link.observer, Link):
        link = link.observer
    assert isinstance(link, abc.DisposableBase)
    link.dispose()  # from this thread, while the other is inside the source's subscribe
    assert source.disposed == 0
    gate.set()
    subscribing.join(10)
    assert source.disposed == 1
    assert raw.calls == []


def test_a_retry_disposed_from_another_thread_while_it_resubscribes_disposes_the_new_attempt() -> None:
    scheduler = TestScheduler()
    gate, entered = threading.Event(), threading.Event()
    attempts: list[HandSource] = []

    class Attempts(Fused[Any]):
        def _subscribe_core(
            self, observer: abc.ObserverBase[Any], scheduler_: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            source = HandSource(gate, entered) if attempts else HandSource()
            attempts.append(source)
            return source._subscribe_core(observer, scheduler_)

    raw = Raw()
    policy = RetryPolicy(max_retries=1, backoff=Backoff(initial=1, jitter=0))
    subscription = subscribe_fused(Attempts().pipe(retry_turn(policy, scheduler=scheduler)), raw, scheduler)
    attempts[0].observers[0].on_error(TransportError("refused"))
    retrying = threading.Thread(target=scheduler.start)  # the wait ends; the retry subscribes again
    retrying.start()
    assert entered.wait(10)
    subscription.dispose()  # while the second attempt is being subscribed, on the other thread
    gate.set()
    retrying.join(10)
    assert (attempts[0].disposed, attempts[1].disposed) == (1, 1)
    attempts[1].observers[0].on_next(TEXT)
    attempts[1].observers[0].on_completed()
    # Nothing from the disposed attempt; at most the announcement of the retry before it.
    assert all(kind == "next" and type(value) is Retrying for kind, value in raw.calls)


def test_an_error_out_of_a_stopped_observers_on_error_is_raised_not_swallowed() -> None:
    class NoOnError(Raw):
        def on_error(self, error: Exception) -> None:
            raise error  # what a subscriber without on_error does, through Rx

    class Failing(Fused[Any]):
        def _subscribe_core(
            self, observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            observer.on_error(LookupError("no such stream"))
            return Disposable()

    with pytest.raises(LookupError, match="no such stream"):
        subscribe_fused(Stage(Stage(Failing(), relay), relay), NoOnError(), None)
