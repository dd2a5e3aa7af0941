"""Retries: which failures are retried, how long to wait, and the operator that re-subscribes.

A turn is retried only **before its first event**: once anything was delivered,
a retry would deliver it twice, so the error goes to the observer instead.

=================================================  =========================================
failure (before the first event)                   retried?
=================================================  =========================================
``TransportError`` (refused, reset, DNS, dropped   yes
before the response)
``StreamTimeoutError("connect")``                  yes
``StreamTruncatedError`` with ``connection_lost``  yes (the connection broke mid-body)
``ProviderError`` with ``status`` in               yes; ``Retry-After`` / ``retry-after-ms``
``retry_statuses`` (408, 409, 429, 500, 502, 503,  is honoured
504; Anthropic adds 529)
``ProviderError`` inside a 200 stream whose        yes, like a 529; the error keeps its
``type`` is in ``retry_error_types``               ``type``
(``overloaded_error``, ``api_error``,
``server_error``, ``rate_limit_error``,
``timeout_error``) or whose ``code`` is one of
``retry_statuses``
``ProviderError`` 400, 401, 403, 404, 422          never
``StreamTimeoutError`` first_event, idle, total    no: the provider may be working on (and
                                                   billing) the request
``StreamTruncatedError`` (clean end without the    no
end marker), ``ChunkDecodeError``, ``SseError``,
``ResponseTooLargeError``
anything after the first event                     no
=================================================  =========================================

The wait before retry *n* (from 1) is the server's ``Retry-After`` when it sent
one, else ``min(initial * 2 ** (n - 1), maximum)`` less up to ``jitter`` of it
at random. A server asking for a longer wait than ``max_retry_after`` is not
retried: its error is delivered at once, ``retry_after`` on it, rather than
holding the stream for that long or retrying earlier than the server asked.
"""

from __future__ import annotations

import random as _random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, Disposable, SerialDisposable, SingleAssignmentDisposable

from rxllm.errors import ProviderError, StreamTimeoutError, StreamTruncatedError, TransportError
from rxllm.timeouts import timer_scheduler

__all__ = [
    "NEVER_RETRY_STATUSES",
    "RETRY_ERROR_TYPES",
    "RETRY_STATUSES",
    "Backoff",
    "Retry",
    "RetryPolicy",
    "retry_before_first_event",
]

_T = TypeVar("_T")

RETRY_STATUSES: frozenset[int] = frozenset({408, 409, 429, 500, 502, 503, 504})
"""HTTP statuses retried by every provider; a provider class may add its own (Anthropic: 529)."""

NEVER_RETRY_STATUSES: frozenset[int] = frozenset({400, 401, 403, 404, 422})
"""The request itself is wrong (or the key is): sending it again cannot help."""

RETRY_ERROR_TYPES: frozenset[str] = frozenset(
    {"overloaded_error", "api_error", "server_error", "rate_limit_error", "timeout_error"}
)
"""``ProviderError.type`` values that, inside a 200 stream, mean a transient failure.

Anthropic's ``overloaded_error`` (its 529), ``api_error`` (500), ``rate_limit_error``
(429) and ``timeout_error`` (504); OpenAI's and OpenRouter's ``server_error``.
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class Backoff:
    """How long to wait before each retry (seconds)."""

    initial: float = 0.5
    maximum: float = 8.0
    jitter: float = 0.25
    """The fraction of each wait that may be taken off at random, so clients do not retry in step."""
    max_retry_after: float = 60.0
    """The longest ``Retry-After`` honoured; a longer one is not retried."""

    def __post_init__(self) -> None:
        if self.initial < 0 or self.maximum < self.initial or not 0 <= self.jitter <= 1:
            raise ValueError(f"invalid backoff {self!r}")

    def wait(self, retry: int, retry_after: float | None, random: Callable[[], float]) -> float | None:
        """Seconds before retry number ``retry`` (from 1), or ``None`` when the server asks too much."""
        if retry_after is not None:
            return retry_after if retry_after <= self.max_retry_after else None
        base: float = min(self.initial * 2.0 ** (retry - 1), self.maximum)
        return base * (1.0 - self.jitter * random())


@dataclass(frozen=True, slots=True)
class Retry:
    """One retry about to happen, as ``on_retry`` hears of it."""

    attempt: int
    """The retry's number, from 1 (the request will then have been sent ``attempt + 1`` times)."""
    max_retries: int
    reason: str
    delay: float
    error: Exception


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """Which failures are retried, how often and how long apart."""

    max_retries: int = 2
    backoff: Backoff = field(default_factory=Backoff)
    statuses: frozenset[int] = RETRY_STATUSES
    error_types: frozenset[str] = RETRY_ERROR_TYPES

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be 0 or more, not {self.max_retries}")
        if self.statuses & NEVER_RETRY_STATUSES:
            raise ValueError(f"HTTP {sorted(self.statuses & NEVER_RETRY_STATUSES)} are never retried")

    def reason(self, error: Exception) -> str | None:
        """Why ``error`` (before the first event) may be retried, or ``None`` when it may not."""
        if isinstance(error, ProviderError):
            if error.status is not None:
                if error.status in self.statuses:
                    return f"HTTP {error.status}" + (f" ({error.type})" if error.type else "")
                return None
            if error.type in self.error_types:
                return f"{error.type} in the stream"
            if error.code is not None and error.code.isdigit() and int(error.code) in self.statuses:
                return f"error {error.code} in the stream" + (f" ({error.type})" if error.type else "")
            return None
        if isinstance(error, TransportError):
            return "connection failed"
        if isinstance(error, StreamTimeoutError):
            return "connect timeout" if error.which == "connect" else None
        if isinstance(error, StreamTruncatedError):
            return "connection lost before the first event" if error.connection_lost else None
        return None

    def plan(self, error: Exception, retry: int, random: Callable[[], float]) -> tuple[str, float] | None:
        """``(reason, delay)`` for retry number ``retry`` (from 1) after ``error``, or ``None``: give up."""
        if retry > self.max_retries:
            return None
        reason = self.reason(error)
        if reason is None:
            return None
        retry_after = error.retry_after if isinstance(error, ProviderError) else None
        delay = self.backoff.wait(retry, retry_after, random)
        if delay is None:
            return None
        if retry_after is not None:
            reason += f", Retry-After {retry_after:g} s"
        return reason, delay


def retry_before_first_event(
    policy: RetryPolicy,
    *,
    on_retry: Callable[[Retry], None] | None = None,
    random: Callable[[], float] = _random.random,
    scheduler: abc.SchedulerBase | None = None,
) -> Callable[[Observable[_T]], Observable[_T]]:
    """Re-subscribe to the source after a retryable error, as long as it has emitted nothing.

    The source must be cold (each subscription sends the request anew). The
    wait runs on ``scheduler`` (else the subscriber's, else the running asyncio
    loop). ``on_retry`` is called before each wait. Once the source emitted an
    item, every error passes through. Disposing cancels a pending wait.

    .. marble::
        :alt: retry_before_first_event

        first subscription:   #             (HTTP 503)
        second, after 2:        --#         (HTTP 503)
        third, after 4:              -a-b-|
        [ retry_before_first_event(RetryPolicy(backoff=Backoff(initial=2, jitter=0))) ]
        ---------a-b-|

    (Mid-stream retries, which would emit a ``StreamReset`` first, are the one
    place this would change: ``delivered`` is the switch.)
    """

    def _retry(source: Observable[_T]) -> Observable[_T]:
        def subscribe(
            observer: abc.ObserverBase[_T],
            scheduler_: abc.SchedulerBase | None = None,
        ) -> abc.DisposableBase:
            timers, _now = timer_scheduler(scheduler or scheduler_)
            subscription = SerialDisposable()
            timer = SerialDisposable()
            delivered = False
            retries = 0
            stopped = False

            def run(_scheduler: abc.SchedulerBase | None = None, _state: object = None) -> None:
                if stopped:
                    return
                # Assigned before subscribing: a source that fails at once schedules its retry
                # into ``timer``, which this must not overwrite.
                inner = SingleAssignmentDisposable()
                subscription.disposable = inner
                inner.disposable = source.subscribe(on_next, on_error, on_completed, scheduler=scheduler_)

            def on_next(item: _T) -> None:
                nonlocal delivered
                delivered = True
                observer.on_next(item)

            def on_error(error: Exception) -> None:
                nonlocal retries
                if stopped:
                    return
                planned = None if delivered else policy.plan(error, retries + 1, random)
                if planned is None:
                    observer.on_error(error)
                    return
                retries += 1
                reason, delay = planned
                if on_retry is not None:
                    on_retry(Retry(retries, policy.max_retries, reason, delay, error))
                timer.disposable = timers.schedule_relative(delay, run)

            def on_completed() -> None:
                observer.on_completed()

            def stop() -> None:
                nonlocal stopped
                stopped = True

            run()
            return CompositeDisposable(Disposable(stop), subscription, timer)

        return Observable(subscribe)

    return _retry
