"""Retries: which failures are retried, how long to wait, and the operators that re-subscribe.

By default a turn is retried only **before its first event**: once anything was
delivered, a retry would deliver it twice, so the error goes to the observer
instead. ``midstream_retries`` (below) lifts that, announcing each resend.

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
``type`` or ``code`` is in ``retry_error_types``   ``type`` and ``code``
(``overloaded_error``, ``api_error``,
``server_error``, ``rate_limit_error``,
``rate_limit_exceeded``, ``timeout_error``) or
whose ``code`` is one of ``retry_statuses``
``ProviderError`` 400, 401, 403, 404, 422          never
``StreamTimeoutError`` first_event, idle, total    no: the provider may be working on (and
                                                   billing) the request
``StreamTruncatedError`` (clean end without the    no
end marker), ``ChunkDecodeError``, ``SseError``
(``NotEventStreamError`` too),
``ResponseTooLargeError``
anything after the first event                     no
=================================================  =========================================

The wait before the *n*-th failure of a turn is retried (from 1) is the
server's ``Retry-After`` when it sent one, else ``min(initial * 2 ** (n - 1),
maximum)`` less up to ``jitter`` of it at random. *n* counts every failure of
the turn that was retried or resent, of every kind, so an HTTP retry followed by
a mid-stream resend waits ``initial``, then twice that: the waits grow, they do
not start over. A server asking for a longer wait than ``max_retry_after`` is
not retried: its error is delivered at once, ``retry_after`` on it, rather than
holding the stream for that long or retrying earlier than the server asked.

``retry_turn`` announces each retry before the first event with a
``Retrying(attempt, delay, reason, status)`` event, emitted before the wait:
``attempt`` the number the next request will have (the turn's first request is
1), ``status`` the HTTP status that failed (``None`` for a transport failure or
an error inside the stream). It is no content: the next attempt is still "before
the first event", and a ``retry_turn`` downstream of another does not count it
as delivered. ``retry_before_first_event``, generic over its items, emits none.

An ``on_retry`` callback that raises ends the stream: its observer gets
``CallbackError("on_retry", error)`` (the original as ``__cause__``), and no
retry happens.

**Mid-stream resends** (``RetryPolicy(midstream_retries=n)``, the providers'
``midstream_retries=n``; off by default). ``retry_turn`` sends the request again,
up to ``n`` times per turn, when a stream breaks after the server accepted it:

=================================================  =========================================
failure after the response started                 resent? (``midstream_retries > 0``)
=================================================  =========================================
``StreamTruncatedError`` (connection lost, or a    yes
clean end without the end marker)
``ChunkDecodeError``, ``SseError`` (a malformed    yes
chunk, bytes that are no event stream)
``StreamTimeoutError("idle")``                     yes
``ProviderError`` inside the stream that the       yes
table above calls transient
``ProviderError`` 4xx other than 408, 409, 429;    never
non-transient error events
``StreamTimeoutError`` first_event, total;         no
``EventTooLargeError``, ``ResponseTooLargeError``,
``NotEventStreamError`` (the server would answer
the same way again)
=================================================  =========================================

Before each resend the observer gets ``StreamReset(attempt, reason)``, meaning
"discard everything this turn delivered so far": one reset per resend, emitted
when the resend is decided (before its wait), ``attempt`` the number the next
request will have (the turn's first request is 1). A failure before the
attempt's first event that the first table retries stays with ``max_retries``
and is announced by a ``Retrying``, as any retry before the first event. When
the budget is spent, the observer gets the last attempt's error, as it is.
"""

from __future__ import annotations

import random as _random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from reactivex import Observable, abc

from rxllm.errors import (
    CallbackError,
    ChunkDecodeError,
    EventTooLargeError,
    NotEventStreamError,
    ProviderError,
    SseError,
    StreamTimeoutError,
    StreamTruncatedError,
    TransportError,
)
from rxllm.events import AssistantEvent, Retrying, StreamReset
from rxllm.transport._fusion import Link, Stage
from rxllm.transport.timeouts import Timers

__all__ = [
    "NEVER_RETRY_STATUSES",
    "RETRY_ERROR_TYPES",
    "RETRY_STATUSES",
    "Backoff",
    "Retry",
    "RetryPolicy",
    "retry_before_first_event",
    "retry_turn",
]

_T = TypeVar("_T")

RETRY_STATUSES: frozenset[int] = frozenset({408, 409, 429, 500, 502, 503, 504})
"""HTTP statuses retried by every provider; a provider class may add its own (Anthropic: 529)."""

NEVER_RETRY_STATUSES: frozenset[int] = frozenset({400, 401, 403, 404, 422})
"""The request itself is wrong (or the key is): sending it again cannot help."""

RETRY_ERROR_TYPES: frozenset[str] = frozenset(
    {
        "overloaded_error",
        "api_error",
        "server_error",
        "rate_limit_error",
        "rate_limit_exceeded",
        "timeout_error",
    }
)
"""``ProviderError.type`` or ``.code`` values that, inside a 200 stream, mean a transient failure.

Anthropic's types ``overloaded_error`` (its 529), ``api_error`` (500), ``rate_limit_error``
(429) and ``timeout_error`` (504); OpenAI's and OpenRouter's ``server_error``, which the
Responses API sends as the ``code`` of ``response.failed`` and of its ``error`` event, as it
does ``rate_limit_exceeded``.
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
    """The retry's number, from 1, counted apart for retries and resends."""
    max_retries: int
    """The budget ``attempt`` counts against: ``max_retries``, or ``midstream_retries`` for a resend."""
    reason: str
    delay: float
    error: Exception
    midstream: bool = False
    """A mid-stream resend (announced by a ``StreamReset``) rather than a retry before the first event."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """Which failures are retried, how often and how long apart."""

    max_retries: int = 2
    backoff: Backoff = field(default_factory=Backoff)
    statuses: frozenset[int] = RETRY_STATUSES
    error_types: frozenset[str] = RETRY_ERROR_TYPES
    midstream_retries: int = 0
    """Resends of a turn whose stream broke after the response started (``retry_turn`` only)."""

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be 0 or more, not {self.max_retries}")
        if self.midstream_retries < 0:
            raise ValueError(f"midstream_retries must be 0 or more, not {self.midstream_retries}")
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
            if error.code in self.error_types:
                return f"{error.code} in the stream"
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

    def resend_reason(self, error: Exception) -> str | None:
        """Why a turn whose stream broke with ``error`` may be sent again mid-stream, or ``None``."""
        if isinstance(error, ProviderError):
            return self.reason(error)
        if isinstance(error, StreamTruncatedError):
            if error.connection_lost:
                return "connection lost mid-stream"
            return "stream ended without its end marker"
        if isinstance(error, ChunkDecodeError):
            return "malformed chunk"
        if isinstance(error, SseError) and not isinstance(error, EventTooLargeError | NotEventStreamError):
            return "invalid event stream"
        if isinstance(error, StreamTimeoutError):
            return "idle timeout" if error.which == "idle" else None
        if isinstance(error, TransportError):
            return "connection failed"
        return None

    def plan(
        self, error: Exception, retry: int, random: Callable[[], float], *, failures: int | None = None
    ) -> tuple[str, float] | None:
        """``(reason, delay)`` for retry number ``retry`` (from 1) after ``error``, or ``None``: give up.

        ``failures`` is the number of the turn's failures so far, this one included,
        which sets the backoff (``retry`` when not given); ``retry`` counts against
        ``max_retries``.
        """
        if retry > self.max_retries:
            return None
        return self._delayed(self.reason(error), error, failures or retry, random)

    def plan_resend(
        self, error: Exception, resend: int, random: Callable[[], float], *, failures: int | None = None
    ) -> tuple[str, float] | None:
        """``(reason, delay)`` for mid-stream resend number ``resend`` (from 1), or ``None``: give up.

        ``failures`` as for ``plan``; ``resend`` counts against ``midstream_retries``.
        """
        if resend > self.midstream_retries:
            return None
        return self._delayed(self.resend_reason(error), error, failures or resend, random)

    def _delayed(
        self, reason: str | None, error: Exception, failures: int, random: Callable[[], float]
    ) -> tuple[str, float] | None:
        if reason is None:
            return None
        retry_after = error.retry_after if isinstance(error, ProviderError) else None
        delay = self.backoff.wait(failures, retry_after, random)
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
    ``policy.midstream_retries`` is not used here: mid-stream resends need a
    ``StreamReset`` to emit, which is what ``retry_turn`` adds.

    .. marble::
        :alt: retry_before_first_event

        #                   the first subscription: # = ProviderError("busy", status=503)
        --#                 the second, 2 ticks later (the backoff): # = ProviderError("busy", status=503)
        -a-b-|              the third, 4 ticks after the second failed (the backoff doubled)
        [ retry_before_first_event(RetryPolicy(backoff=Backoff(initial=2, jitter=0))) ]
        ---------a-b-|
    """
    return _retrying(policy, None, on_retry, random, scheduler)


def retry_turn(
    policy: RetryPolicy,
    *,
    on_retry: Callable[[Retry], None] | None = None,
    random: Callable[[], float] = _random.random,
    scheduler: abc.SchedulerBase | None = None,
) -> Callable[[Observable[AssistantEvent]], Observable[AssistantEvent]]:
    """``retry_before_first_event`` announcing each retry, plus up to ``policy.midstream_retries`` resends.

    Before each wait of a retry before the first event it emits
    ``Retrying(attempt, delay, reason, status)``. After the source failed in a
    way ``RetryPolicy.resend_reason`` accepts (and that is not a retry before the
    first event), it emits ``StreamReset(attempt, reason)`` at once and
    re-subscribes after the backoff; observers discard what the turn delivered
    before the reset. With ``midstream_retries=0`` it never resends.

    .. marble::
        :alt: retry_turn

        #                   the first subscription: # = ProviderError("busy", status=503)
        -a-b-#              the second, 2 ticks later: # = StreamTruncatedError("lost", connection_lost=True)
        -c-d-|              the third, 4 ticks after the second failed
        [ retry_turn(RetryPolicy(midstream_retries=1, backoff=Backoff(initial=2, jitter=0))) ]
        w--a-b-R----c-d-|   w: the retry announced; R: discard a and b, the turn is sent again

        :values: w = Retrying(attempt=2, delay=2, reason="HTTP 503", status=503)
                 R = StreamReset(attempt=3, reason="connection lost mid-stream")
    """
    return _retrying(policy, _reset, on_retry, random, scheduler, announce=_announce)


def _reset(attempt: int, reason: str) -> AssistantEvent:
    return StreamReset(attempt=attempt, reason=reason)


def _announce(attempt: int, delay: float, reason: str, error: Exception) -> AssistantEvent:
    status = error.status if isinstance(error, ProviderError) else None
    return Retrying(attempt=attempt, delay=delay, reason=reason, status=status)


def _retrying(
    policy: RetryPolicy,
    reset: Callable[[int, str], Any] | None,
    on_retry: Callable[[Retry], None] | None,
    random: Callable[[], float],
    scheduler: abc.SchedulerBase | None,
    *,
    announce: Callable[[int, float, str, Exception], Any] | None = None,
) -> Callable[[Observable[Any]], Observable[Any]]:
    """The operator behind both: ``reset`` makes the item announcing a resend (``None``: no resends),
    ``announce`` the item announcing a retry before the first event (``None``: none)."""
    rules = _Rules(
        policy, reset if policy.midstream_retries > 0 else None, on_retry, random, scheduler, announce
    )

    def link(observer: abc.ObserverBase[Any], scheduler_: abc.SchedulerBase | None) -> _Retrying:
        return _Retrying(observer, rules, scheduler_)

    def _retry(source: Observable[Any]) -> Observable[Any]:
        return Stage(source, link)

    return _retry


class _Rules:
    """One retry operator's settings, shared by its subscriptions."""

    __slots__ = ("announce", "on_retry", "policy", "random", "reset", "scheduler")

    def __init__(
        self,
        policy: RetryPolicy,
        reset: Callable[[int, str], Any] | None,
        on_retry: Callable[[Retry], None] | None,
        random: Callable[[], float],
        scheduler: abc.SchedulerBase | None,
        announce: Callable[[int, float, str, Exception], Any] | None,
    ) -> None:
        self.policy = policy
        self.reset = reset
        self.on_retry = on_retry
        self.random = random
        self.scheduler = scheduler
        self.announce = announce


class _Retrying(Link[Any, Any]):
    """One subscription: the current attempt (the link's source subscription), the counts, the wait."""

    __slots__ = ("cancel", "delivered", "resends", "retries", "rules", "scheduler", "source", "timers")

    def __init__(
        self, observer: abc.ObserverBase[Any], rules: _Rules, scheduler: abc.SchedulerBase | None
    ) -> None:
        super().__init__(observer)
        self.rules = rules
        self.scheduler = scheduler
        self.source: Observable[Any] | None = None
        self.timers: Timers | None = None
        self.cancel: Callable[[], None] | None = None  # the pending wait's
        self.delivered = False  # by the current attempt
        self.retries = 0
        self.resends = 0

    def subscribe_to(self, source: Observable[Any], scheduler: abc.SchedulerBase | None) -> None:
        self.source = source
        self._attempt()

    def _attempt(self) -> None:
        if self.stopped or self.source is None:
            return
        self.delivered = False
        self.cancel = None
        self.detach()  # the attempt before, which has ended
        super().subscribe_to(self.source, self.scheduler)

    def on_next(self, item: Any) -> None:
        if not self.stopped:
            # An upstream retry's announcement is no content: the attempt is still before its first event.
            if not self.delivered and type(item) is not Retrying:
                self.delivered = True
            self.observer.on_next(item)

    def on_error(self, error: Exception) -> None:
        if self.stopped:
            return
        rules = self.rules
        policy = rules.policy
        failures = self.retries + self.resends + 1  # the backoff grows over every kind of failure
        if not self.delivered and policy.reason(error) is not None:
            planned = policy.plan(error, self.retries + 1, rules.random, failures=failures)
            if planned is None:
                super().on_error(error)
                return
            self.retries += 1
            reason, delay = planned
            if not self._heard(Retry(self.retries, policy.max_retries, reason, delay, error)):
                return
            if rules.announce is not None:
                self.observer.on_next(rules.announce(1 + self.retries + self.resends, delay, reason, error))
                if self.stopped:
                    return
        elif rules.reset is not None:
            planned = policy.plan_resend(error, self.resends + 1, rules.random, failures=failures)
            if planned is None:
                super().on_error(error)
                return
            self.resends += 1
            reason, delay = planned
            budget = policy.midstream_retries
            if not self._heard(Retry(self.resends, budget, reason, delay, error, midstream=True)):
                return
            self.observer.on_next(rules.reset(1 + self.retries + self.resends, reason))
            if self.stopped:
                return
        else:
            super().on_error(error)
            return
        # The timers are found only when a retry needs them: most turns never retry.
        timers = self.timers = Timers(rules.scheduler or self.scheduler)
        self.cancel = timers.call_later(delay, self._attempt)

    def _heard(self, retry: Retry) -> bool:
        """Tell ``on_retry``; when it raises, end the stream with ``CallbackError`` and say so (false)."""
        on_retry = self.rules.on_retry
        if on_retry is None:
            return True
        try:
            on_retry(retry)
        except Exception as exc:  # noqa: BLE001 - a user's callback failing ends the stream, loud
            super().on_error(CallbackError("on_retry", exc))
            return False
        return True

    def dispose(self) -> None:
        super().dispose()
        cancel, self.cancel = self.cancel, None
        if cancel is not None and self.timers is not None:
            self.timers.soon(cancel)  # the wait is the timers' thread's to cancel
