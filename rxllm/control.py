"""``PauseControl``: pause and resume a stream, from any thread.

Pausing holds delivery *and* stops reading the socket: the source waits on the
control before each read, so a fast server is held back by TCP flow control
and memory stays bounded. Nothing polls: waiting is an asyncio future, and
``pause_gate`` is woken by a listener call on ``resume()``.

::

    control = PauseControl()
    provider.stream(request, pause=control).subscribe(print)
    control.pause()     # e.g. from a GUI button
    control.resume()
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
from collections.abc import Callable, Iterator

from reactivex.abc import DisposableBase
from reactivex.disposable import Disposable

__all__ = ["DEFAULT_BACKLOG", "Backlog", "PauseControl", "throttled", "throttles"]

Listener = Callable[[bool], None]


class PauseControl:
    """A pause switch shared by a stream's source and its ``pause_gate``.

    ``pause()`` and ``resume()`` may be called from any thread; a resume that
    races a pause is never lost: the flag is set under a lock, and listeners and
    waiters act on the flag as it is when they run, so the last call wins.
    Neither ever delivers events on the caller's thread: a stream is woken on
    its own event loop (``call_soon_threadsafe``), and a stream whose loop has
    closed is skipped, so one dead stream never keeps the others paused.
    """

    def __init__(self, *, paused: bool = False) -> None:
        self._lock = threading.RLock()
        self._paused = paused
        self._listeners: list[Listener] = []
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    def __repr__(self) -> str:
        return f"PauseControl(paused={self._paused})"

    @property
    def is_paused(self) -> bool:
        return self._paused

    def pause(self) -> None:
        self._set(True)

    def resume(self) -> None:
        self._set(False)

    def _set(self, paused: bool) -> None:
        with self._lock:
            if self._paused == paused:
                return
            self._paused = paused
            waiters, self._waiters = (self._waiters, []) if not paused else ([], self._waiters)
            listeners = list(self._listeners)
        for loop, future in waiters:
            try:
                loop.call_soon_threadsafe(_wake, future)
            except RuntimeError:
                # That waiter's loop has closed (its stream ended with it): the others still wake.
                if not loop.is_closed():
                    raise
        # Outside the lock: a listener may hand work to a loop, and a pause from another
        # thread must not wait for that. Listeners read ``is_paused`` again under their own
        # lock, so a change they hear late is never acted on wrongly. One listener failing
        # never keeps the others from hearing the change.
        failures: list[Exception] = []
        for listener in listeners:
            try:
                listener(paused)
            except Exception as exc:  # noqa: BLE001 - raised below, after every listener heard
                failures.append(exc)
        if failures:
            raise failures[0]

    def add_listener(self, listener: Listener) -> DisposableBase:
        """Call ``listener(paused)`` on every change until the returned disposable is disposed."""
        with self._lock:
            self._listeners.append(listener)

        def remove() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return Disposable(remove)

    async def wait_resumed(self) -> None:
        """Return at once when not paused; otherwise wait, without polling, until ``resume()``."""
        if not self._paused:
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._lock:
            if not self._paused:
                return
            self._waiters.append((loop, future))
        try:
            await future
        finally:
            with self._lock:
                if (loop, future) in self._waiters:
                    self._waiters.remove((loop, future))


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


# -- backpressure from bridges ------------------------------------------------------------------

_throttles: contextvars.ContextVar[tuple[PauseControl, ...]] = contextvars.ContextVar(
    "rxllm_throttles", default=()
)


def throttles() -> tuple[PauseControl, ...]:
    """The throttles of the consumers this code runs for (see ``throttled``); ``()`` for none."""
    return _throttles.get()


@contextlib.contextmanager
def throttled(control: PauseControl) -> Iterator[None]:
    """Subscriptions made inside this block also wait while ``control`` is paused.

    A consumer with a bound (``aiter``, ``iterate``, the agent's hook path) pauses
    ``control`` when it holds too many events; rxllm's HTTP source stops reading
    the socket while any throttle of the subscription is paused, and the time
    limits stop with it (the server is not stalled: the consumer is slow). The
    throttles travel with the subscription in a context variable, so the tasks,
    timers and later turns a subscription starts inherit them.
    """
    token = _throttles.set((*_throttles.get(), control))
    try:
        yield
    finally:
        _throttles.reset(token)


DEFAULT_BACKLOG = 256
"""Events a bounded consumer holds before it pauses its source (it resumes below half)."""


class Backlog:
    """Counts what a consumer holds and throttles the source: paused above ``limit``, resumed at half.

    A ``PauseControl`` in disguise (``control``); ``added()`` when an event is
    taken in, ``removed()`` when it is handed out. Safe from any thread.
    """

    __slots__ = ("_lock", "control", "held", "limit")

    def __init__(self, limit: int = DEFAULT_BACKLOG) -> None:
        if limit < 1:
            raise ValueError(f"a backlog limit must be 1 or more, not {limit}")
        self.limit = limit
        self.held = 0
        self.control = PauseControl()
        self._lock = threading.Lock()

    def added(self) -> None:
        # The decision and the switch under one lock: a resume for a drained backlog never
        # lands before the pause it should undo.
        with self._lock:
            self.held += 1
            if self.held > self.limit and not self.control.is_paused:
                self.control.pause()

    def removed(self) -> None:
        with self._lock:
            self.held -= 1
            if self.held <= self.limit // 2 and self.control.is_paused:
                self.control.resume()
