"""``pause_gate(control)``: hold delivery while a ``PauseControl`` is paused."""

from __future__ import annotations

import threading
from collections import deque

from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, Disposable
from reactivex.notification import Notification, OnCompleted, OnError, OnNext

from rxllm.control import PauseControl
from rxllm.events import AssistantEvent
from rxllm.typing import EventOperator

__all__ = ["pause_gate"]


def pause_gate(control: PauseControl) -> EventOperator:
    """Hold events, completion and errors while ``control`` is paused; release them in order on resume.

    Nothing overtakes data: a completion or an error that arrives while paused
    waits behind the events held before it. Resuming wakes the gate through
    ``control.add_listener`` (no polling, no timers) and the held notifications
    are delivered on the thread that called ``resume()``. A ``pause()`` from
    inside an observer stops delivery right after the event being delivered.
    Disposing removes the listener and unsubscribes the source; what was held is
    dropped. When not paused and nothing is held, an event goes straight through.

    .. marble::
        :alt: pause_gate

        -a-b-c-|
        --P---R-            P = control.pause(), R = control.resume()
        [ pause_gate(control) ]
        -a----(bc)|
    """

    def _pause_gate(source: Observable[AssistantEvent]) -> Observable[AssistantEvent]:
        def subscribe(
            observer: abc.ObserverBase[AssistantEvent],
            scheduler: abc.SchedulerBase | None = None,
        ) -> abc.DisposableBase:
            lock = threading.Lock()
            held: deque[Notification[AssistantEvent]] = deque()
            # One thread at a time delivers; the flag also turns re-entrant calls into queued ones.
            delivering = False
            stopped = False

            def deliver(first: Notification[AssistantEvent] | None) -> None:
                """Deliver ``first`` (if any), then what is held, until paused, empty or stopped."""
                nonlocal delivering, stopped
                notification = first
                try:
                    while True:
                        if notification is not None:
                            if isinstance(notification, OnNext):
                                observer.on_next(notification.value)
                            elif isinstance(notification, OnError):
                                observer.on_error(notification.exception)
                            else:
                                observer.on_completed()
                        with lock:
                            if stopped or control.is_paused or not held:
                                delivering = False
                                return
                            notification = held.popleft()
                            if not isinstance(notification, OnNext):
                                stopped = True
                except BaseException:
                    with lock:
                        delivering = False
                    raise

            def push(notification: Notification[AssistantEvent]) -> None:
                nonlocal delivering, stopped
                with lock:
                    if stopped:
                        return
                    if delivering or held or control.is_paused:
                        held.append(notification)
                        if delivering or control.is_paused:
                            return
                        notification = held.popleft()
                    delivering = True
                    if not isinstance(notification, OnNext):
                        stopped = True
                deliver(notification)

            def on_next(event: AssistantEvent) -> None:
                nonlocal delivering
                with lock:
                    fast = not (delivering or stopped or held or control.is_paused)
                    if fast:
                        delivering = True
                if fast:
                    try:
                        observer.on_next(event)
                    except BaseException:
                        with lock:
                            delivering = False
                        raise
                    deliver(None)
                else:
                    push(OnNext(event))

            def on_error(error: Exception) -> None:
                push(OnError(error))

            def on_completed() -> None:
                push(OnCompleted())

            def on_change(paused: bool) -> None:
                nonlocal delivering
                if paused:
                    return
                with lock:
                    if delivering or stopped or not held:
                        return
                    delivering = True
                deliver(None)

            def stop() -> None:
                nonlocal stopped
                with lock:
                    stopped = True
                    held.clear()

            listening = control.add_listener(on_change)
            subscription = source.subscribe(on_next, on_error, on_completed, scheduler=scheduler)
            return CompositeDisposable(Disposable(stop), listening, subscription)

        return Observable(subscribe)

    return _pause_gate
