"""chain and watch (rxllm.transport._chain): marbles, splicing, trampolining, a raw observer, other threads.

``chain`` is the agent run's sequencing: its parts one after the other, each made when its turn comes. The
tests observe it raw (every call recorded, however many arrive), so a second terminal or an item after one
would show.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

import reactivex
from reactivex import Observable, abc
from reactivex.disposable import Disposable
from reactivex.subject import Subject
from reactivex.testing.marbles import marbles_testing

from rxllm.transport._chain import chain, watch
from rxllm.transport._fusion import subscribe_fused


class Raw(abc.ObserverBase[Any]):
    """Records every call, terminals included."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.errors: list[Exception] = []
        self.completions = 0
        self.ended = threading.Event()

    def on_next(self, value: Any) -> None:
        self.items.append(value)

    def on_error(self, error: Exception) -> None:
        self.errors.append(error)
        self.ended.set()

    def on_completed(self) -> None:
        self.completions += 1
        self.ended.set()

    @property
    def terminals(self) -> int:
        return len(self.errors) + self.completions


values: dict[str | float, object] = {"a": 1, "b": 2, "c": 3}


def test_the_parts_follow_each_other_each_made_when_its_turn_comes() -> None:
    made: list[int] = []
    with marbles_testing() as (start, cold, _hot, exp):
        first = cold("-a-|", values, None)
        second = cold("--b-|", values, None)

        def make() -> Observable[Any]:
            made.append(1)
            return second

        result = start(chain(first, make, cold("c|", values, None)))
        assert result == exp("-a---b-c|", values, None)
    assert made == [1]


def test_an_error_ends_the_chain_and_the_later_parts_are_never_made() -> None:
    made: list[int] = []

    def make() -> Observable[Any]:
        made.append(1)
        return reactivex.just(9)

    with marbles_testing() as (start, cold, _hot, exp):
        error = ValueError("no")
        result = start(chain(cold("-a-#", values, error), make))
        assert result == exp("-a-#", values, error)
    assert made == []


def test_a_part_whose_factory_raises_is_the_chains_error() -> None:
    def broken() -> Observable[Any]:
        raise LookupError("no such step")

    raw = Raw()
    subscribe_fused(chain(reactivex.just(1), broken, reactivex.just(2)), raw, None)
    assert (raw.items, [str(e) for e in raw.errors], raw.completions) == ([1], ["no such step"], 0)


def test_no_parts_complete_at_once() -> None:
    raw = Raw()
    subscribe_fused(chain(), raw, None)
    assert (raw.items, raw.terminals, raw.completions) == ([], 1, 1)


def test_a_chain_made_by_a_part_is_spliced_not_nested() -> None:
    # A run of 3,000 turns, each made by the one before it (as the agent's turns are): with nesting, each
    # turn's events would pass one more observer per turn before it, and the stack would overflow.
    depth: list[int] = []

    def frames() -> int:
        frame, count = sys._getframe(), 0
        while frame is not None:
            frame, count = frame.f_back, count + 1  # type: ignore[assignment]
        return count

    def turn(number: int) -> Observable[int]:
        def probe(value: int) -> None:
            depth.append(frames())

        events = watch(reactivex.just(number), probe)
        return chain(events, lambda: turn(number + 1)) if number < 3000 else events

    raw = Raw()
    subscribe_fused(chain(turn(1)), raw, None)
    assert raw.items == list(range(1, 3001)) and raw.completions == 1 and not raw.errors
    assert max(depth) - min(depth) <= 2, "every turn's events are delivered at the same depth"


def at_once(value: int) -> Observable[int]:
    """``value`` and the end, sent inside ``subscribe`` itself (``reactivex.just`` would trampoline)."""

    def subscribe(observer: abc.ObserverBase[int], _scheduler: abc.SchedulerBase | None = None) -> Any:
        observer.on_next(value)
        observer.on_completed()
        return Disposable()

    return Observable(subscribe)


def test_parts_that_complete_as_they_are_subscribed_do_not_nest() -> None:
    raw = Raw()
    subscribe_fused(chain(*[at_once(n) for n in range(20_000)]), raw, None)
    assert raw.items == list(range(20_000)) and raw.completions == 1 and not raw.errors


def test_disposing_stops_the_chain_and_makes_no_further_part() -> None:
    subject: Subject[int] = Subject()
    made: list[int] = []
    disposed: list[int] = []

    def second() -> Observable[int]:
        made.append(1)
        return reactivex.just(2)

    def first(observer: abc.ObserverBase[int], _scheduler: abc.SchedulerBase | None = None) -> Disposable:
        inner = subject.subscribe(observer)

        def dispose() -> None:
            disposed.append(1)
            inner.dispose()

        return Disposable(dispose)

    raw = Raw()
    subscription = subscribe_fused(chain(Observable(first), second), raw, None)
    subject.on_next(1)
    subscription.dispose()
    subject.on_next(5)
    subject.on_completed()
    assert (raw.items, raw.terminals, made, disposed) == ([1], 0, [], [1])


THREADS: list[threading.Thread] = []


def on_thread(value: int) -> Observable[int]:
    """``value`` and the end, sent from a thread of its own once subscribed."""

    def subscribe(observer: abc.ObserverBase[int], _scheduler: abc.SchedulerBase | None = None) -> Any:
        def emit() -> None:
            observer.on_next(value)
            observer.on_completed()

        thread = threading.Thread(target=emit)
        THREADS.append(thread)
        thread.start()
        return Disposable()

    return Observable(subscribe)


def test_a_part_that_completes_on_another_thread_starts_the_next_there() -> None:
    # Each part completes on a thread of its own; the chain hears every completion, nests none, loses none.
    raw = Raw()
    subscribe_fused(chain(*[(lambda n=n: on_thread(n)) for n in range(200)]), raw, None)
    assert raw.ended.wait(20)
    assert raw.items == list(range(200)) and raw.terminals == 1 and raw.completions == 1


def race_once() -> int:
    made_after: list[int] = []
    disposed = threading.Event()

    def part(value: int) -> Observable[int]:
        if disposed.is_set():
            made_after.append(value)
        return on_thread(value)

    raw = Raw()
    subscription = subscribe_fused(chain(*[(lambda n=n: part(n)) for n in range(40)]), raw, None)

    def dispose() -> None:
        subscription.dispose()
        disposed.set()

    racer = threading.Thread(target=dispose)
    racer.start()
    racer.join(5)
    for thread in list(THREADS):
        thread.join(5)
    # A prefix of the items and no terminal, or (the race lost) all of them and one completion.
    assert raw.terminals == 0 or (raw.completions == 1 and raw.items == list(range(40)))
    assert raw.items == list(range(len(raw.items)))
    assert len(made_after) <= 1  # at most the part being made as the dispose returned
    return len(raw.items)


def test_a_dispose_from_another_thread_races_the_parts_and_nothing_follows_it() -> None:
    # Parts complete on threads of their own while another thread disposes.
    delivered = [race_once() for _ in range(30)]
    assert all(0 <= count <= 40 for count in delivered)


def test_watch_calls_before_passing_and_a_raising_callback_is_the_error() -> None:
    seen: list[int] = []
    errors: list[Exception] = []
    with marbles_testing() as (start, cold, _hot, exp):
        result = start(watch(cold("-a-b-|", values, None), seen.append, errors.append))
        assert result == exp("-a-b-|", values, None)
    assert seen == [1, 2] and errors == []

    def refuse(value: int) -> None:
        if value == 2:
            raise ValueError("two")

    with marbles_testing() as (start, cold, _hot, exp):
        error = ValueError("two")
        result = start(watch(cold("-a-b-c-|", values, None), refuse, errors.append))
        assert result == exp("-a-#", values, error)
    assert [str(e) for e in errors] == ["two"]


def test_watch_hears_the_sources_error_first() -> None:
    heard: list[str] = []
    with marbles_testing() as (start, cold, _hot, exp):
        error = ValueError("boom")
        result = start(watch(cold("-a-#", values, error), None, lambda e: heard.append(str(e))))
        assert result == exp("-a-#", values, error)
    assert heard == ["boom"]


def test_watch_an_error_callback_that_raises_is_the_error_delivered() -> None:
    def broken(_error: Exception) -> None:
        raise RuntimeError("the callback failed")

    with marbles_testing() as (start, cold, _hot, exp):
        result = start(watch(cold("-a-#", values, ValueError("boom")), None, broken))
        assert result == exp("-a-#", values, RuntimeError("the callback failed"))
