import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest
from reactivex import Observable, Subject, abc
from reactivex import operators as ops
from reactivex.disposable import Disposable
from reactivex.notification import OnError
from reactivex.scheduler.eventloop import AsyncIOScheduler
from reactivex.testing import ReactiveTest, TestScheduler
from reactivex.testing.marbles import marbles_testing
from reactivex.testing.recorded import Recorded

from rxllm.control import Listener, PauseControl
from rxllm.errors import CallbackError, EventLoopError, StreamTimeoutError
from rxllm.events import AssistantEvent, Final, Retrying, StreamReset, TextDelta
from rxllm.operators import pause_gate
from rxllm.transport._fusion import Fused, subscribe_fused

on_next, on_error, on_completed = ReactiveTest.on_next, ReactiveTest.on_error, ReactiveTest.on_completed
subscribe = ReactiveTest.subscribe

a, b, c, d = (TextDelta(text=t) for t in "abcd")
f = Final(finish_reason="stop")
values: dict[str | float, object] = {"a": a, "b": b, "c": c, "d": d, "f": f}


class CountingControl(PauseControl):
    """A ``PauseControl`` that counts the listeners currently registered."""

    def __init__(self, *, paused: bool = False) -> None:
        super().__init__(paused=paused)
        self.listening = 0

    def add_listener(self, listener: Listener) -> abc.DisposableBase:
        self.listening += 1
        inner = super().add_listener(listener)

        def remove() -> None:
            self.listening -= 1
            inner.dispose()

        return Disposable(remove)


def at(scheduler: TestScheduler, time: float, action: Callable[[], None]) -> None:
    """Call ``action`` at a virtual time (kept apart from the source's ticks to avoid ties)."""

    def run(_scheduler: abc.SchedulerBase, _state: Any) -> None:
        action()

    scheduler.schedule_absolute(time, run)


def cold(marbles: str, error: Exception | None = None) -> Observable[AssistantEvent]:
    with marbles_testing() as (_start, cold_, _hot, _exp):
        return cold_(marbles, values, error)


def exp(marbles: str, error: Exception | None = None) -> list[Recorded[Any]]:
    with marbles_testing() as (_start, _cold, _hot, exp_):
        return exp_(marbles, values, error)


def test_events_pass_straight_through_when_not_paused() -> None:
    with marbles_testing() as (start, cold_, _hot, exp_):
        source = cold_("-a-b-(f,|)", values, None)
        assert start(source.pipe(pause_gate(PauseControl()))) == exp_("-a-b-(f,|)", values, None)


def test_events_are_held_while_paused_and_released_in_order_on_resume() -> None:
    scheduler, control = TestScheduler(), PauseControl()
    at(scheduler, 202, control.pause)
    at(scheduler, 206, control.resume)
    results = scheduler.start(lambda: cold("-a-b-c-d-|").pipe(pause_gate(control)))
    assert results.messages == [
        on_next(201, a),
        on_next(206, b),
        on_next(206, c),
        on_next(207, d),
        on_completed(209),
    ]


def test_completion_is_held_while_paused() -> None:
    scheduler, control = TestScheduler(), PauseControl()
    at(scheduler, 202, control.pause)
    at(scheduler, 210, control.resume)
    results = scheduler.start(lambda: cold("-a-b-|").pipe(pause_gate(control)))
    assert results.messages == exp("-a--------(b,|)")


def test_completion_alone_is_held_while_paused() -> None:
    scheduler, control = TestScheduler(), PauseControl()
    at(scheduler, 202, control.pause)
    at(scheduler, 210, control.resume)
    results = scheduler.start(lambda: cold("-a-|").pipe(pause_gate(control)))
    assert results.messages == exp("-a--------|")


def test_error_is_held_while_paused_behind_the_events() -> None:
    error = StreamTimeoutError("idle", 30)
    scheduler, control = TestScheduler(), PauseControl()
    at(scheduler, 202, control.pause)
    at(scheduler, 210, control.resume)
    results = scheduler.start(lambda: cold("-a-b-#", error).pipe(pause_gate(control)))
    assert results.messages == exp("-a--------(b,#)", error)
    last = results.messages[-1].value
    assert isinstance(last, OnError)
    assert last.exception is error


def test_paused_before_subscribe() -> None:
    scheduler, control = TestScheduler(), PauseControl(paused=True)
    at(scheduler, 204, control.resume)
    results = scheduler.start(lambda: cold("-a-b-c-|").pipe(pause_gate(control)))
    assert results.messages == [on_next(204, a), on_next(204, b), on_next(205, c), on_completed(207)]


def test_never_resumed_delivers_nothing() -> None:
    scheduler, control = TestScheduler(), PauseControl(paused=True)
    results = scheduler.start(lambda: cold("-a-b-|").pipe(pause_gate(control)))
    assert results.messages == []


def test_pause_again_after_resume() -> None:
    scheduler, control = TestScheduler(), PauseControl()
    at(scheduler, 202, control.pause)
    at(scheduler, 204, control.resume)
    at(scheduler, 206, control.pause)
    at(scheduler, 212, control.resume)
    results = scheduler.start(lambda: cold("-a-b-c-d-|").pipe(pause_gate(control)))
    assert results.messages == [
        on_next(201, a),
        on_next(204, b),
        on_next(205, c),
        on_next(212, d),
        on_completed(212),
    ]


def test_dispose_unsubscribes_the_source_and_removes_the_listener() -> None:
    scheduler, control = TestScheduler(), CountingControl()
    xs = scheduler.create_hot_observable(on_next(210, a), on_next(230, b), on_next(260, c), on_completed(400))
    at(scheduler, 220, control.pause)
    at(scheduler, 500, control.resume)
    results = scheduler.start(lambda: xs.pipe(pause_gate(control)), disposed=300)
    assert results.messages == [on_next(210, a)]
    assert xs.subscriptions == [subscribe(200, 300)]
    assert control.listening == 0


def test_dispose_while_paused_then_resume_delivers_nothing() -> None:
    scheduler, control = TestScheduler(), CountingControl()
    at(scheduler, 202, control.pause)
    at(scheduler, 301, control.resume)
    source = cold("-a-b-c-|")
    results = scheduler.start(lambda: source.pipe(pause_gate(control)), disposed=206)
    assert results.messages == [on_next(201, a)]
    assert control.listening == 0
    assert not control.is_paused


def test_the_listener_is_removed_at_completion() -> None:
    scheduler, control = TestScheduler(), CountingControl()
    listening: list[int] = []
    at(scheduler, 202, lambda: listening.append(control.listening))
    results = scheduler.start(lambda: cold("-a---|").pipe(pause_gate(control)))
    assert results.messages == exp("-a---|")
    assert (listening, control.listening) == ([1], 0)


def test_pause_from_inside_on_next_stops_delivery_right_there() -> None:
    scheduler, control = TestScheduler(), PauseControl()
    at(scheduler, 205, control.resume)

    def pause_on_a(event: AssistantEvent) -> None:
        if event is a:
            control.pause()

    source = cold("-(a,b,c)-|")
    results = scheduler.start(lambda: source.pipe(pause_gate(control), ops.do_action(pause_on_a)))
    assert results.messages == [on_next(201, a), on_next(205, b), on_next(205, c), on_completed(209)]


def test_pause_from_inside_on_next_while_releasing_held_events() -> None:
    scheduler, control = TestScheduler(), PauseControl(paused=True)
    at(scheduler, 206, control.resume)
    at(scheduler, 210, control.resume)

    def pause_on_b(event: AssistantEvent) -> None:
        if event is b:
            control.pause()

    source = cold("-a-b-c-|")
    results = scheduler.start(lambda: source.pipe(pause_gate(control), ops.do_action(pause_on_b)))
    assert results.messages == [on_next(206, a), on_next(206, b), on_next(210, c), on_completed(210)]


def test_pause_and_resume_inside_on_next_neither_duplicate_nor_reorder() -> None:
    scheduler, control = TestScheduler(), PauseControl(paused=True)
    at(scheduler, 206, control.resume)

    def toggle_on_a(event: AssistantEvent) -> None:
        if event is a:
            control.pause()
            control.resume()

    source = cold("-a-b-c-|")
    results = scheduler.start(lambda: source.pipe(pause_gate(control), ops.do_action(toggle_on_a)))
    assert results.messages == [on_next(206, a), on_next(206, b), on_next(206, c), on_completed(207)]


def test_an_event_emitted_from_inside_on_next_waits_its_turn() -> None:
    subject: Subject[AssistantEvent] = Subject()
    seen: list[AssistantEvent] = []

    def on_event(event: AssistantEvent) -> None:
        # The gate's observer makes the source emit again before its own on_next returns.
        if event is a:
            subject.on_next(b)
        seen.append(event)

    subject.pipe(pause_gate(PauseControl())).subscribe(on_event)
    subject.on_next(a)
    subject.on_next(c)
    assert seen == [a, b, c]


def test_resubscribing_starts_clean() -> None:
    scheduler, control = TestScheduler(), PauseControl()
    gated = cold("-a-b-c-|").pipe(pause_gate(control))
    first, second = scheduler.create_observer(), scheduler.create_observer()
    subscriptions: list[abc.DisposableBase] = []
    at(scheduler, 200, lambda: subscriptions.append(gated.subscribe(first, scheduler=scheduler)))
    at(scheduler, 202, control.pause)
    # The first subscription ends holding b.
    at(scheduler, 204, lambda: subscriptions[0].dispose())
    at(scheduler, 206, control.resume)
    at(scheduler, 206, lambda: subscriptions.append(gated.subscribe(second, scheduler=scheduler)))
    scheduler.start()
    assert first.messages == [on_next(201, a)]
    assert second.messages == [on_next(207, a), on_next(209, b), on_next(211, c), on_completed(213)]


def test_another_thread_resumes() -> None:
    control = PauseControl(paused=True)
    subject: Subject[AssistantEvent] = Subject()
    seen: list[tuple[AssistantEvent | str, int]] = []
    done = threading.Event()

    def on_completed_() -> None:
        seen.append(("done", threading.get_ident()))
        done.set()

    subject.pipe(pause_gate(control)).subscribe(
        lambda e: seen.append((e, threading.get_ident())), on_completed=on_completed_
    )
    subject.on_next(a)
    subject.on_next(b)
    subject.on_completed()
    assert seen == []
    resumer = threading.Thread(target=control.resume)
    resumer.start()
    assert done.wait(5)
    resumer.join(5)
    assert [event for event, _ in seen] == [a, b, "done"]
    # Delivered on the thread that resumed, not on this one.
    assert {thread for _, thread in seen} == {resumer.ident}


def test_toggling_from_another_thread_neither_loses_duplicates_nor_reorders() -> None:
    control = PauseControl()
    subject: Subject[AssistantEvent] = Subject()
    events = [TextDelta(text=str(n)) for n in range(3000)]
    seen: list[AssistantEvent] = []
    done = threading.Event()
    subject.pipe(pause_gate(control)).subscribe(seen.append, on_completed=done.set)
    stop = threading.Event()

    def toggle() -> None:
        while not stop.is_set():
            control.pause()
            control.resume()

    toggler = threading.Thread(target=toggle)
    toggler.start()
    try:
        for event in events:
            subject.on_next(event)
        subject.on_completed()
    finally:
        stop.set()
        toggler.join(5)
    control.resume()
    assert done.wait(5)
    assert seen == events


def test_a_stream_reset_is_held_in_order_like_any_event() -> None:
    reset = StreamReset(attempt=2, reason="connection lost mid-stream")
    scheduler = TestScheduler()
    control = PauseControl()
    xs = scheduler.create_hot_observable(
        on_next(210, a), on_next(220, reset), on_next(230, b), on_next(240, f), on_completed(250)
    )
    scheduler.schedule_absolute(215, lambda *_: control.pause())
    scheduler.schedule_absolute(260, lambda *_: control.resume())
    results = scheduler.start(lambda: xs.pipe(pause_gate(control)))
    assert results.messages == [
        on_next(210, a),
        on_next(260, reset),
        on_next(260, b),
        on_next(260, f),
        on_completed(260),
    ]


async def test_on_a_loop_held_events_are_released_on_the_loop_and_a_raising_observer_ends_it_loud() -> None:
    import asyncio

    from rxllm.errors import CallbackError

    loop_thread = threading.get_ident()
    control = PauseControl(paused=True)
    subject: Subject[AssistantEvent] = Subject()
    calls: list[tuple[str, object, int]] = []
    ended = asyncio.Event()
    boom = ValueError("view gone")
    disposed: list[bool] = []

    class Raising(abc.ObserverBase[AssistantEvent]):
        def on_next(self, value: AssistantEvent) -> None:
            calls.append(("next", value, threading.get_ident()))
            if value == b:
                raise boom

        def on_error(self, error: Exception) -> None:
            calls.append(("error", error, threading.get_ident()))
            ended.set()

        def on_completed(self) -> None:
            calls.append(("completed", None, threading.get_ident()))
            ended.set()

    source = subject.pipe(ops.finally_action(lambda: disposed.append(True)))
    source.pipe(pause_gate(control)).subscribe(Raising())
    subject.on_next(a)
    subject.on_next(b)
    subject.on_next(c)
    assert calls == []
    await asyncio.to_thread(control.resume)
    await asyncio.wait_for(ended.wait(), 5)
    assert [(kind, value) for kind, value, _ in calls[:2]] == [("next", a), ("next", b)]
    kind, error, _ = calls[2]
    assert kind == "error" and type(error) is CallbackError and error.__cause__ is boom
    assert len(calls) == 3
    assert {thread for _, _, thread in calls} == {loop_thread}
    assert disposed == [True]  # the source was unsubscribed


def test_a_retrying_is_held_and_released_in_order_like_any_event() -> None:
    retrying = Retrying(attempt=2, delay=0.5, reason="HTTP 503", status=503)
    local: dict[str | float, object] = {**values, "w": retrying}
    scheduler = TestScheduler()
    control = PauseControl()
    xs = scheduler.create_cold_observable(on_next(1, retrying), on_next(3, a), on_completed(5))
    at(scheduler, 200.5, control.pause)
    at(scheduler, 206, control.resume)
    results = scheduler.start(lambda: xs.pipe(pause_gate(control)))
    assert results.messages == [on_next(206, retrying), on_next(206, a), on_completed(206)]
    with marbles_testing() as (start, cold_, _hot, exp_):
        assert start(cold_("-w-a-|", local, None).pipe(pause_gate(PauseControl()))) == exp_(
            "-w-a-|", local, None
        )


# -- the gate's own rules, observed raw ---------------------------------------------------------------
#
# Each gate here is subscribed with ``subscribe_fused`` to a source driven by hand, which hands the gate's
# link out as it is, and delivers to a recorder that takes every call: no ``AutoDetachObserver`` on
# either side to enforce the rules the gate must keep itself.


class HandSource(Fused[AssistantEvent]):
    """A fused source the test drives: ``observer`` is the gate's link, called directly."""

    def __init__(self) -> None:
        self.observer: abc.ObserverBase[AssistantEvent] | None = None
        self.disposed = 0

    def _subscribe_core(
        self, observer: abc.ObserverBase[AssistantEvent], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        self.observer = observer

        def dispose() -> None:
            self.disposed += 1

        return Disposable(dispose)

    @property
    def link(self) -> abc.ObserverBase[AssistantEvent]:
        assert self.observer is not None
        return self.observer


class Recorder(abc.ObserverBase[AssistantEvent]):
    """Every call, with the thread it came on.

    ``before`` runs inside ``on_next`` before the event is recorded; ``raises`` maps an event to what its
    ``on_next`` raises (after recording); ``error_raises`` is raised from ``on_error`` after recording.
    """

    def __init__(
        self,
        *,
        before: Callable[[AssistantEvent], None] | None = None,
        raises: dict[AssistantEvent, Exception] | None = None,
        error_raises: Exception | None = None,
    ) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.threads: set[int] = set()
        self.before = before
        self.raises = raises or {}
        self.error_raises = error_raises
        self.ended = threading.Event()

    def on_next(self, value: AssistantEvent) -> None:
        if self.before is not None:
            self.before(value)
        self.calls.append(("next", value))
        self.threads.add(threading.get_ident())
        if value in self.raises:
            raise self.raises[value]

    def on_error(self, error: Exception) -> None:
        self.calls.append(("error", error))
        self.threads.add(threading.get_ident())
        self.ended.set()
        if self.error_raises is not None:
            raise self.error_raises

    def on_completed(self) -> None:
        self.calls.append(("completed", None))
        self.threads.add(threading.get_ident())
        self.ended.set()


def gated(
    control: PauseControl, recorder: Recorder, scheduler: abc.SchedulerBase | None = None
) -> tuple[HandSource, abc.DisposableBase]:
    source = HandSource()
    subscription = subscribe_fused(pause_gate(control)(source), recorder, scheduler)
    return source, subscription


def resume_from_another_thread(control: PauseControl) -> None:
    """Resume from a thread of its own and wait for it: on a loop, this blocks the loop meanwhile, so the
    release the resume posts to the loop has not run when this returns."""
    resumer = threading.Thread(target=control.resume)
    resumer.start()
    resumer.join()


def _end_straight(source: HandSource, control: PauseControl, subscription: abc.DisposableBase) -> None:
    source.link.on_completed()


def _fail_straight(source: HandSource, control: PauseControl, subscription: abc.DisposableBase) -> None:
    source.link.on_error(BOOM)


def _end_while_paused(source: HandSource, control: PauseControl, subscription: abc.DisposableBase) -> None:
    control.pause()
    source.link.on_completed()
    control.resume()


def _dispose(source: HandSource, control: PauseControl, subscription: abc.DisposableBase) -> None:
    subscription.dispose()


BOOM = StreamTimeoutError("idle", 1.0)
Ending = Callable[[HandSource, PauseControl, abc.DisposableBase], None]
ENDINGS: dict[str, tuple[Ending, list[tuple[str, Any]]]] = {
    "completed straight through": (_end_straight, [("next", a), ("completed", None)]),
    "failed straight through": (_fail_straight, [("next", a), ("error", BOOM)]),
    "completed while paused, released on resume": (_end_while_paused, [("next", a), ("completed", None)]),
    "disposed": (_dispose, [("next", a)]),
}


@pytest.mark.parametrize("ending", ENDINGS)
def test_after_its_end_the_gate_passes_nothing_even_from_a_source_that_breaks_the_rules(ending: str) -> None:
    end, expected = ENDINGS[ending]
    control = PauseControl()
    recorder = Recorder()
    source, subscription = gated(control, recorder)
    source.link.on_next(a)
    end(source, control, subscription)
    assert recorder.calls == expected
    source.link.on_next(b)  # a source that goes on after its own end, or after being disposed
    source.link.on_completed()
    source.link.on_error(BOOM)
    control.pause()
    control.resume()
    assert recorder.calls == expected
    assert source.disposed == 1


def test_an_observer_raising_on_a_released_event_ends_it_with_callback_error_and_nothing_follows() -> None:
    boom = ValueError("view gone")
    control = PauseControl(paused=True)
    recorder = Recorder(raises={b: boom})
    source, _subscription = gated(control, recorder)
    source.link.on_next(a)
    source.link.on_next(b)
    source.link.on_next(c)
    control.resume()  # no loop (pure Rx): released here, on this thread
    assert recorder.calls[:2] == [("next", a), ("next", b)]
    (kind, error), *rest = recorder.calls[2:]
    assert (kind, type(error), str(error), error.callback) == (
        "error",
        CallbackError,
        "on_next raised ValueError: view gone",
        "on_next",
    )
    assert error.__cause__ is boom and rest == []
    assert source.disposed == 1
    source.link.on_next(d)  # c was dropped with the failure; nothing passes after it
    source.link.on_completed()
    assert len(recorder.calls) == 3


def test_without_a_loop_an_on_error_that_raises_too_is_raised_to_the_resumer() -> None:
    oops = RuntimeError("on_error broke")
    control = PauseControl(paused=True)
    recorder = Recorder(raises={a: ValueError("view gone")}, error_raises=oops)
    source, _subscription = gated(control, recorder)
    source.link.on_next(a)
    with pytest.raises(RuntimeError) as raised:
        control.resume()
    assert raised.value is oops
    assert [kind for kind, _ in recorder.calls] == ["next", "error"]


async def test_on_a_loop_an_on_error_that_raises_too_is_reported_to_the_loop_at_once() -> None:
    loop = asyncio.get_running_loop()
    oops = RuntimeError("on_error broke")
    control = PauseControl(paused=True)
    recorder = Recorder(raises={a: ValueError("view gone")}, error_raises=oops)
    source, _subscription = gated(control, recorder)
    source.link.on_next(a)
    reports: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: reports.append(context))
    try:
        control.resume()  # on the loop's thread: released at once, inside this call
    finally:
        loop.set_exception_handler(None)
    assert reports == [{"message": "rxllm: on_error raised", "exception": oops}]
    assert [kind for kind, _ in recorder.calls] == ["next", "error"]


async def test_subscribed_from_another_thread_held_events_are_released_on_the_schedulers_loop() -> None:
    loop = asyncio.get_running_loop()
    control = PauseControl(paused=True)
    recorder = Recorder()
    source, _subscription = await asyncio.to_thread(gated, control, recorder, AsyncIOScheduler(loop))
    source.link.on_next(a)
    source.link.on_completed()
    await asyncio.to_thread(control.resume)
    await asyncio.wait_for(asyncio.to_thread(recorder.ended.wait, 5), 6)
    assert recorder.calls == [("next", a), ("completed", None)]
    assert recorder.threads == {threading.get_ident()}  # the loop's thread, not the resumer's


@pytest.mark.parametrize("arriving", ["an event", "the completion"])
async def test_what_arrives_before_a_posted_release_runs_waits_behind_what_was_held(arriving: str) -> None:
    control = PauseControl(paused=True)
    recorder = Recorder()
    source, _subscription = gated(control, recorder)
    source.link.on_next(a)
    source.link.on_next(b)
    resume_from_another_thread(control)  # the release is posted to this loop and has not run yet
    if arriving == "an event":
        source.link.on_next(c)
        assert recorder.calls == [("next", a), ("next", b), ("next", c)]
        source.link.on_completed()
    else:
        source.link.on_completed()
    expected = [("next", a), ("next", b)] + ([("next", c)] if arriving == "an event" else [])
    assert recorder.calls == [*expected, ("completed", None)]
    await asyncio.sleep(0)  # the posted release runs now and finds nothing held
    assert recorder.calls == [*expected, ("completed", None)]


@pytest.mark.parametrize("arriving", ["an event", "the completion"])
async def test_a_pause_and_resume_from_inside_a_held_events_on_next_does_not_deliver_the_rest_inside_it(
    arriving: str,
) -> None:
    control = PauseControl(paused=True)

    def toggle(event: AssistantEvent) -> None:
        if event == a:
            control.pause()
            control.resume()

    recorder = Recorder(before=toggle)
    source, _subscription = gated(control, recorder)
    source.link.on_next(a)
    source.link.on_next(b)
    resume_from_another_thread(control)
    if arriving == "an event":
        source.link.on_next(c)
        source.link.on_completed()
        expected = [("next", a), ("next", b), ("next", c), ("completed", None)]
    else:
        source.link.on_completed()
        expected = [("next", a), ("next", b), ("completed", None)]
    # Recorded after ``toggle``: a delivery nested inside a's on_next would have recorded b before a.
    assert recorder.calls == expected


async def test_an_observer_raising_as_an_arrival_delivers_the_held_leaves_the_gate_open_for_the_error() -> (
    None
):
    boom = ValueError("view gone")
    control = PauseControl(paused=True)
    recorder = Recorder(raises={a: boom})
    source, _subscription = gated(control, recorder)
    source.link.on_next(a)
    source.link.on_next(b)
    resume_from_another_thread(control)
    with pytest.raises(ValueError):
        source.link.on_next(c)  # delivers a first, whose on_next raises, out to the source
    failure = CallbackError("on_next", boom)
    source.link.on_error(failure)  # as rxllm's sources do with an exception out of on_next
    assert recorder.calls == [("next", a), ("next", b), ("next", c), ("error", failure)]


def test_an_observer_raising_on_an_event_going_straight_through_leaves_the_gate_open() -> None:
    boom = ValueError("view gone")
    recorder = Recorder(raises={a: boom})
    source, _subscription = gated(PauseControl(), recorder)
    with pytest.raises(ValueError):
        source.link.on_next(a)
    failure = CallbackError("on_next", boom)
    source.link.on_error(failure)
    assert recorder.calls == [("next", a), ("error", failure)]


def test_an_event_loop_error_is_delivered_at_once_behind_what_was_held_though_paused() -> None:
    control = PauseControl(paused=True)
    recorder = Recorder()
    source, _subscription = gated(control, recorder)
    source.link.on_next(a)
    source.link.on_next(b)
    closed = EventLoopError("the event loop closed under a live stream")
    source.link.on_error(closed)
    assert recorder.calls == [("next", a), ("next", b), ("error", closed)]
    assert source.disposed == 1
    source.link.on_next(c)
    control.resume()
    assert recorder.calls == [("next", a), ("next", b), ("error", closed)]
