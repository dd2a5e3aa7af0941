"""``pause_gate(control)``: hold delivery while a ``PauseControl`` is paused."""

from __future__ import annotations

import asyncio
import threading
from collections import deque

from reactivex import Observable, abc
from reactivex.notification import Notification, OnCompleted, OnError, OnNext

from rxllm.control import PauseControl
from rxllm.errors import CallbackError, EventLoopError
from rxllm.events import AssistantEvent
from rxllm.transport._aio import event_loop, on_loop, unsubscribable
from rxllm.transport._fusion import Link, Stage
from rxllm.typing import EventOperator

__all__ = ["pause_gate"]


def pause_gate(control: PauseControl) -> EventOperator:
    """Hold events, completion and errors while ``control`` is paused; release them in order on resume.

    Nothing overtakes data: a completion or an error that arrives while paused
    waits behind the events held before it. Resuming wakes the gate through
    ``control.add_listener`` (no polling, no timers). Held notifications are
    delivered on the event loop the stream runs on (the subscriber's
    ``AsyncIOScheduler``'s loop, or the loop running when it subscribed), never
    on the thread that called ``resume()``; without a loop (a marble test's
    virtual time) they are delivered at once, on the resuming thread. A
    ``pause()`` from inside an observer stops delivery right after the event
    being delivered. Disposing removes the listener and unsubscribes the source;
    what was held is dropped. When not paused and nothing is held, an event goes
    straight through.

    An ``EventLoopError`` (the loop is shutting down under the stream) is not
    held: what was held is delivered with it at once, the last chance anything
    has to reach the observer. An observer whose ``on_next`` raises while held
    events are released ends the stream with ``CallbackError``.

    .. marble::
        :alt: pause_gate

        -a-b-c-|            the source
        --P-----R           P: control.pause(), R: control.resume()
        [ pause_gate(control) ]
        -a------(b,c,|)     b, c and the completion held from 2 to 8, then released in order

        -a-b---c-|
        --P-R               resumed at 4: b is released then; c, later, passes straight through
        [ pause_gate(control) ]
        -a--b--c-|

        :values: control = PauseControl()
                 a, b, c = TextDelta(text="a"), TextDelta(text="b"), TextDelta(text="c")
                 P, R = control.pause, control.resume
    """

    def link(observer: abc.ObserverBase[AssistantEvent], scheduler: abc.SchedulerBase | None) -> _PauseGate:
        return _PauseGate(observer, control, scheduler)

    def _pause_gate(source: Observable[AssistantEvent]) -> Observable[AssistantEvent]:
        return Stage(source, link)

    return _pause_gate


class _PauseGate(Link[AssistantEvent, AssistantEvent]):
    """One subscription: what is held, whether someone is delivering, the loop to deliver on.

    ``delivering`` makes one thread at a time deliver, and turns a re-entrant
    call (an observer emitting or resuming from inside ``on_next``) into a
    queued one. ``ended`` is set once a terminal is taken for delivery or the
    subscription is disposed: nothing is accepted after it.
    """

    __slots__ = ("control", "delivering", "ended", "held", "listening", "lock", "loop")

    def __init__(
        self,
        observer: abc.ObserverBase[AssistantEvent],
        control: PauseControl,
        scheduler: abc.SchedulerBase | None,
    ) -> None:
        super().__init__(observer)
        self.control = control
        self.lock = threading.Lock()
        self.held: deque[Notification[AssistantEvent]] = deque()
        self.delivering = False
        self.ended = False
        self.loop: asyncio.AbstractEventLoop | None
        try:
            self.loop = event_loop(scheduler)
        except EventLoopError:
            self.loop = None  # pure Rx (virtual time): delivered where the resume happens
        self.listening: abc.DisposableBase | None = control.add_listener(self._changed)

    # -- from the source ---------------------------------------------------------------

    def on_next(self, value: AssistantEvent) -> None:
        with self.lock:
            if self.ended:
                return
            if self.delivering or self.held or self.control.is_paused:
                held = True
                self.held.append(OnNext(value))
                if self.delivering or self.control.is_paused:
                    return
            else:
                held = False
            self.delivering = True
        if held:
            self._deliver(None)
            return
        try:
            self.observer.on_next(value)  # the common case: straight through
        except BaseException:
            with self.lock:
                self.delivering = False
            raise
        self._deliver(None)

    def on_error(self, error: Exception) -> None:
        if isinstance(error, EventLoopError):
            self._flush(OnError(error))
        else:
            self._push(OnError(error))

    def on_completed(self) -> None:
        self._push(OnCompleted())

    # -- delivery ----------------------------------------------------------------------

    def _push(self, notification: Notification[AssistantEvent]) -> None:
        with self.lock:
            if self.ended:
                return
            if self.delivering or self.held or self.control.is_paused:
                self.held.append(notification)
                if self.delivering or self.control.is_paused:
                    return
                notification = self.held.popleft()
            self.delivering = True
            if not isinstance(notification, OnNext):
                self.ended = True
        self._deliver(notification)

    def _deliver(self, notification: Notification[AssistantEvent] | None) -> None:
        """Deliver ``notification`` (if any), then what is held, until paused, empty or ended."""
        try:
            while True:
                if notification is not None:
                    self._send(notification)
                with self.lock:
                    if self.stopped or self.control.is_paused or not self.held:
                        self.delivering = False
                        return
                    notification = self.held.popleft()
                    if not isinstance(notification, OnNext):
                        self.ended = True
        except BaseException:
            with self.lock:
                self.delivering = False
            raise

    def _send(self, notification: Notification[AssistantEvent]) -> None:
        if isinstance(notification, OnNext):
            if not self.stopped:
                self.observer.on_next(notification.value)
        elif isinstance(notification, OnError):
            self._end()
            if self.stop():
                self.observer.on_error(notification.exception)
        else:
            self._end()
            if self.stop():
                self.observer.on_completed()

    def _flush(self, terminal: Notification[AssistantEvent]) -> None:
        """Deliver everything held and ``terminal`` now, paused or not (the loop is going away)."""
        with self.lock:
            if self.ended:
                return
            self.ended = True
            self.held.append(terminal)
            held, self.held = self.held, deque()
            self.delivering = True
        for notification in held:
            self._send(notification)

    def _changed(self, paused: bool) -> None:
        if paused:
            return
        with self.lock:
            if self.delivering or self.stopped or not self.held:
                return
        if self.loop is None:
            self._release()
        else:
            on_loop(self.loop, self._release)

    def _release(self) -> None:
        """On resume: deliver what is held, on the stream's loop."""
        with self.lock:
            if self.delivering or self.stopped or not self.held or self.control.is_paused:
                return
            self.delivering = True
        try:
            self._deliver(None)
        except Exception as exc:  # noqa: BLE001 - an observer's on_next raised: end the stream loud
            self._fail(CallbackError("on_next", exc))

    def _fail(self, error: Exception) -> None:
        with self.lock:
            self.ended = True
            self.held.clear()
        self._end()
        if self.stop():
            try:
                self.observer.on_error(error)
            except Exception as raised:  # noqa: BLE001 - the subscriber's on_error raised too
                if self.loop is None:
                    raise
                unsubscribable(raised, self.loop, "on_error")

    # -- ending --------------------------------------------------------------------------

    def _end(self) -> None:
        listening, self.listening = self.listening, None
        if listening is not None:
            listening.dispose()

    def dispose(self) -> None:
        with self.lock:
            self.ended = True
            self.held.clear()
        self._end()
        super().dispose()
