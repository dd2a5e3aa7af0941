"""Operator fusion: how rxllm's operators subscribe to each other without Rx's per-subscription wrappers.

A turn is a pipe of six rxllm stages (``sse_source``, the timeouts,
``parse_chunk``, ``accumulate_tool_calls``, ``dedupe_final``, the retries).
Subscribed the plain Rx way, every stage wraps its observer in an
``AutoDetachObserver`` with two disposables, each holding an ``RLock``, and
keeps its state in closures: about 1 KiB per stage and subscription, several
times the state itself. With a thousand streams open, that is most of what a
stream costs.

So each rxllm operator returns a ``Fused`` Observable, and keeps one
subscription's state in one slotted ``Link``: the observer of its source, the
disposable its subscriber gets, and the state, in one object. A ``Link``
subscribing to a ``Fused`` source calls it directly (``subscribe_fused``); any
other source (a marble test's, a user's) is subscribed the usual way. A
``Link`` keeps the rules ``AutoDetachObserver`` keeps: nothing after a
terminal, and a terminal or a dispose disposes the source's subscription,
also when that subscription arrives later. Subscribing from outside (a user's
``subscribe``) goes through Rx as always.

This is the operator fusion of RxJava and Reactor ("macro fusion"), kept to
what a turn needs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from reactivex import Observable, abc

__all__ = ["Fused", "Link", "Stage", "subscribe_fused"]

_T_in = TypeVar("_T_in")
_T_out = TypeVar("_T_out")


class Fused(Observable[_T_out]):
    """An Observable that rxllm's ``Link`` subscribes directly; a subclass says how, in ``_subscribe_core``.

    Its ``lock`` (which a few reactivex operators take on their source) is made
    the first time it is asked for, not with every Observable.
    """

    # Observable.__init__ is not called: it only makes the lock (lazily here) and stores a
    # subscribe function, which a subclass replaces with its own _subscribe_core.
    def __init__(self) -> None:  # noqa: B027 - deliberately not calling Observable.__init__
        pass

    @property
    def lock(self) -> threading.RLock:
        lock: threading.RLock | None = self.__dict__.get("_lock")
        if lock is None:
            lock = self.__dict__.setdefault("_lock", threading.RLock())
        return lock

    @lock.setter
    def lock(self, value: threading.RLock) -> None:
        self.__dict__["_lock"] = value

    def _subscribe_core(
        self, observer: abc.ObserverBase[_T_out], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        raise NotImplementedError


class Link(abc.ObserverBase[_T_in], abc.DisposableBase, Generic[_T_in, _T_out]):
    """One subscription of one rxllm operator: the observer of its source and the disposable it returns.

    The default callbacks pass everything through; a subclass overrides
    ``on_next`` (checking ``stopped`` first) and, where it needs to, the
    terminals, ending with ``stop()``. ``stop()`` is true once: it marks the
    link stopped and disposes the source's subscription (before the terminal
    is delivered, so a connection closes before observers hear of the end).
    """

    __slots__ = ("_upstream", "observer", "stopped")

    def __init__(self, observer: abc.ObserverBase[_T_out]) -> None:
        self.observer = observer
        self.stopped = False
        self._upstream: abc.DisposableBase | None = None

    def subscribe_to(self, source: Observable[_T_in], scheduler: abc.SchedulerBase | None) -> None:
        """Subscribe to ``source``, keeping the subscription (disposed at once when already stopped).

        A link that subscribes again (the retries) holds no subscription when it
        calls this; if one is held on return, a later subscription made while
        this one was being made (its source failed at once) won, and this one
        is disposed.
        """
        upstream = subscribe_fused(source, self, scheduler)
        if self._upstream is not None:
            upstream.dispose()  # a later subscription, made while this one was being made, won
            return
        self._upstream = upstream
        # Stopped before or while the subscription was kept (a terminal delivered while
        # subscribing, or a dispose from another thread): it is disposed now, once.
        if self.stopped:
            self.detach()

    def on_next(self, value: _T_in) -> None:
        if not self.stopped:
            self.observer.on_next(value)  # type: ignore[arg-type]  # a pass-through link: _T_in is _T_out

    def on_error(self, error: Exception) -> None:
        if self.stop():
            self.observer.on_error(error)

    def on_completed(self) -> None:
        if self.stop():
            self.observer.on_completed()

    def stop(self) -> bool:
        """Stop once and dispose the source's subscription; false when already stopped."""
        if self.stopped:
            return False
        self.stopped = True
        self.detach()
        return True

    def detach(self) -> None:
        upstream, self._upstream = self._upstream, None
        if upstream is not None:
            upstream.dispose()

    def dispose(self) -> None:
        self.stopped = True
        self.detach()


class Stage(Fused[_T_out]):
    """``source`` through one rxllm operator: ``link(observer, scheduler)`` makes each subscription.

    ``link`` is made once per operator (``parse_chunk(dialect)``), so applying
    the operator to a source costs this one object.
    """

    def __init__(
        self,
        source: Observable[Any],
        link: Callable[[abc.ObserverBase[_T_out], abc.SchedulerBase | None], Link[Any, _T_out]],
    ) -> None:
        self._source = source
        self._link = link

    def _subscribe_core(
        self, observer: abc.ObserverBase[_T_out], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        link = self._link(observer, scheduler)
        link.subscribe_to(self._source, scheduler)
        return link


def subscribe_fused(
    source: Observable[_T_in], observer: abc.ObserverBase[_T_in], scheduler: abc.SchedulerBase | None
) -> abc.DisposableBase:
    """Subscribe ``observer`` (a ``Link``) to ``source``: directly when it is ``Fused``, else through Rx.

    As with Rx's ``subscribe``, an exception raised while subscribing is
    delivered to ``observer`` as an error; when ``observer`` has already
    stopped (the exception came out of its own ``on_error``: a subscriber with
    none raises there), it is raised on, as Rx's ``subscribe`` does.
    """
    if not isinstance(source, Fused):
        return source.subscribe(observer, scheduler=scheduler)
    try:
        return source._subscribe_core(observer, scheduler)
    except Exception as error:  # noqa: BLE001 - delivered, as Rx's subscribe does
        if isinstance(observer, Link) and observer.stopped:
            raise
        observer.on_error(error)
        return _DONE


class _Done(abc.DisposableBase):
    __slots__ = ()

    def dispose(self) -> None:
        pass


_DONE = _Done()
