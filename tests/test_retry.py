"""Which failures retry, how long apart, and the retry operator (marbles), plus retry logging end to end."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Iterator
from typing import Any

import pytest
import reactivex
from conftest import collect_events
from fault_server import MODEL, ROLE, StartFaultServer, Step, fault_server, in_stream_error, text_stream
from loguru import logger
from reactivex import Observable
from reactivex.notification import OnError
from reactivex.testing import ReactiveTest, TestScheduler
from reactivex.testing.marbles import marbles_testing

import rxllm._log
from rxllm.errors import (
    CallbackError,
    ChunkDecodeError,
    EventTooLargeError,
    NotEventStreamError,
    ProviderError,
    ResponseTooLargeError,
    SseError,
    StreamTimeoutError,
    StreamTruncatedError,
    TransportError,
)
from rxllm.events import Retrying, StreamReset
from rxllm.messages import Message
from rxllm.providers.openai import OpenAIChat
from rxllm.request import CompletionRequest
from rxllm.retry import (
    NEVER_RETRY_STATUSES,
    RETRY_STATUSES,
    Backoff,
    Retry,
    RetryPolicy,
    retry_before_first_event,
    retry_turn,
)
from rxllm.transport._http import _retry_after

__all__ = ["fault_server"]

on_next, on_error, on_completed, subscribe = (
    ReactiveTest.on_next,
    ReactiveTest.on_error,
    ReactiveTest.on_completed,
    ReactiveTest.subscribe,
)

BUSY = ProviderError("busy", status=503)
DENIED = ProviderError("bad key", status=401, type="invalid_request_error")
STEADY = RetryPolicy(backoff=Backoff(initial=2, maximum=8, jitter=0))
values: dict[str | float, object] = {"a": "a", "b": "b"}


def attempts(*sources: Observable[Any]) -> Observable[Any]:
    """A cold source whose n-th subscription is ``sources[n]``."""
    made = iter(sources)
    return reactivex.defer(lambda _scheduler: next(made))


# -- the operator ------------------------------------------------------------------------------------


def test_retries_with_backoff_until_the_source_succeeds() -> None:
    with marbles_testing() as (start, cold, _hot, exp):
        source = attempts(cold("#", None, BUSY), cold("--#", None, BUSY), cold("-a-b-|", values, None))
        # 503 at 0, retry after 2; 503 at 4, retry after 4 (doubled); items from 9.
        assert start(source.pipe(retry_before_first_event(STEADY))) == exp("---------a-b-|", values, None)


def test_an_error_after_an_item_is_never_retried() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(on_next(10, "a"), on_error(20, BUSY))
    results = scheduler.start(lambda: xs.pipe(retry_before_first_event(STEADY)))
    assert results.messages == [on_next(210, "a"), on_error(220, BUSY)]
    assert xs.subscriptions == [subscribe(200, 220)]


def test_a_client_error_is_never_retried() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(on_error(10, DENIED))
    results = scheduler.start(lambda: xs.pipe(retry_before_first_event(STEADY)))
    assert results.messages == [on_error(210, DENIED)]
    assert xs.subscriptions == [subscribe(200, 210)]


def test_gives_up_after_max_retries_with_the_last_error() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(on_error(10, BUSY))
    results = scheduler.start(lambda: xs.pipe(retry_before_first_event(STEADY)))
    # attempts at 200, 212 (wait 2), 226 (wait 4); the third error is delivered.
    assert xs.subscriptions == [subscribe(200, 210), subscribe(212, 222), subscribe(226, 236)]
    assert results.messages == [on_error(236, BUSY)]


def test_retry_after_replaces_the_backoff() -> None:
    limited = ProviderError("slow down", status=429, retry_after=30)
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(on_error(10, limited))
    scheduler.start(lambda: xs.pipe(retry_before_first_event(RetryPolicy(max_retries=1))), disposed=1000)
    assert xs.subscriptions == [subscribe(200, 210), subscribe(240, 250)]


def test_disposing_during_the_wait_cancels_the_retry() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(on_error(10, BUSY))
    results = scheduler.start(lambda: xs.pipe(retry_before_first_event(STEADY)), disposed=211)
    assert results.messages == []
    assert xs.subscriptions == [subscribe(200, 210)]


def test_disposing_unsubscribes_the_current_attempt() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(on_next(50, "a"), on_completed(60))
    results = scheduler.start(lambda: xs.pipe(retry_before_first_event(STEADY)), disposed=230)
    assert results.messages == []
    assert xs.subscriptions == [subscribe(200, 230)]


def test_on_retry_hears_each_retry_with_its_reason() -> None:
    heard: list[Retry] = []
    with marbles_testing() as (start, cold, _hot, _exp):
        source = attempts(cold("#", None, BUSY), cold("#", None, BUSY), cold("-a|", values, None))
        start(source.pipe(retry_before_first_event(STEADY, on_retry=heard.append)))
    assert heard == [Retry(1, 2, "HTTP 503", 2.0, BUSY), Retry(2, 2, "HTTP 503", 4.0, BUSY)]


def test_a_source_that_fails_at_once_is_retried() -> None:
    # ``throw`` fails while being subscribed: the retry must still be scheduled, not lost.
    heard: list[Retry] = []
    with marbles_testing() as (start, cold, _hot, exp):
        source = attempts(reactivex.throw(BUSY), cold("-a|", values, None))
        result = start(source.pipe(retry_before_first_event(STEADY, on_retry=heard.append)))
        assert result == exp("---a|", values, None)
    assert len(heard) == 1


# -- the policy --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (TransportError("could not reach"), "connection failed"),
        (StreamTimeoutError("connect", 10), "connect timeout"),
        (StreamTruncatedError("dropped", connection_lost=True), "connection lost before the first event"),
        *((ProviderError("x", status=status), f"HTTP {status}") for status in sorted(RETRY_STATUSES)),
        (ProviderError("x", status=503, type="overloaded_error"), "HTTP 503 (overloaded_error)"),
        (ProviderError("x", type="overloaded_error"), "overloaded_error in the stream"),
        (ProviderError("x", type="api_error"), "api_error in the stream"),
        (ProviderError("x", type="server_error"), "server_error in the stream"),
        (ProviderError("x", type="rate_limit_error"), "rate_limit_error in the stream"),
        (ProviderError("x", type="timeout_error"), "timeout_error in the stream"),
        (ProviderError("x", type="upstream", code="502"), "error 502 in the stream (upstream)"),
        # Responses: response.failed and its error event classify by code, with no type.
        (ProviderError("x", code="server_error"), "server_error in the stream"),
        (ProviderError("x", code="rate_limit_exceeded"), "rate_limit_exceeded in the stream"),
    ],
)
def test_retryable(error: Exception, reason: str) -> None:
    assert RetryPolicy().reason(error) == reason


@pytest.mark.parametrize(
    "error",
    [
        *(ProviderError("x", status=status) for status in sorted(NEVER_RETRY_STATUSES)),
        ProviderError("x", status=413),
        ProviderError("x", status=529),
        ProviderError("x", status=501),
        ProviderError("x", type="invalid_request_error"),
        ProviderError("x", type="invalid_request_error", code="invalid_value"),
        ProviderError("x", code="invalid_prompt"),
        ProviderError("x"),
        StreamTimeoutError("first_event", 1),
        StreamTimeoutError("idle", 1),
        StreamTimeoutError("total", 1),
        StreamTruncatedError("ended before [DONE]"),
        ChunkDecodeError("bad", "{"),
        SseError("invalid UTF-8"),
        EventTooLargeError(10),
        ResponseTooLargeError(10),
        ValueError("a bug"),
    ],
)
def test_not_retryable(error: Exception) -> None:
    assert RetryPolicy().reason(error) is None
    assert RetryPolicy().plan(error, 1, lambda: 0.5) is None


def test_a_provider_adds_statuses() -> None:
    policy = RetryPolicy(statuses=RETRY_STATUSES | {529})
    assert policy.reason(ProviderError("Overloaded", status=529, type="overloaded_error")) == (
        "HTTP 529 (overloaded_error)"
    )


def test_never_retried_statuses_cannot_be_added() -> None:
    with pytest.raises(ValueError, match=r"HTTP \[401\] are never retried"):
        RetryPolicy(statuses=RETRY_STATUSES | {401})


def test_backoff_doubles_up_to_the_maximum_less_jitter() -> None:
    backoff = Backoff(initial=0.5, maximum=3.0, jitter=0.25)
    assert [backoff.wait(n, None, lambda: 0.0) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert [backoff.wait(n, None, lambda: 1.0) for n in (1, 2, 3)] == [0.375, 0.75, 1.5]


def test_retry_after_is_honoured_exactly_and_capped() -> None:
    backoff = Backoff(max_retry_after=60)
    assert backoff.wait(1, 12.5, lambda: 1.0) == 12.5
    assert backoff.wait(1, 0.0, lambda: 1.0) == 0.0
    assert backoff.wait(1, 60.0, lambda: 1.0) == 60.0
    assert backoff.wait(1, 61.0, lambda: 1.0) is None


def test_plan_says_why_and_how_long() -> None:
    policy = RetryPolicy(max_retries=2, backoff=Backoff(initial=1, jitter=0))
    limited = ProviderError("x", status=429, retry_after=7)
    assert policy.plan(limited, 1, lambda: 0.0) == ("HTTP 429, Retry-After 7 s", 7.0)
    assert policy.plan(BUSY, 2, lambda: 0.0) == ("HTTP 503", 2.0)
    assert policy.plan(BUSY, 3, lambda: 0.0) is None


def test_retry_before_first_event_waits_on_the_scheduler_it_was_given() -> None:
    waits = TestScheduler()
    seen: list[Any] = []
    source = attempts(reactivex.throw(BUSY), reactivex.of("a"))
    source.pipe(retry_before_first_event(STEADY, scheduler=waits)).subscribe(
        seen.append, seen.append, lambda: seen.append("completed")
    )  # no scheduler and no loop where it is subscribed: only ``waits`` can run the backoff
    assert seen == []
    waits.advance_to(1.9)
    assert seen == []
    waits.advance_to(2)
    assert seen == ["a", "completed"]


def test_invalid_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="max_retries"):
        RetryPolicy(max_retries=-1)
    with pytest.raises(ValueError, match="invalid backoff"):
        Backoff(initial=2, maximum=1)


@pytest.mark.parametrize(
    "settings", [{"initial": -0.1}, {"initial": 2, "maximum": 1}, {"jitter": -0.01}, {"jitter": 1.01}]
)
def test_a_backoff_outside_its_bounds_is_refused(settings: dict[str, float]) -> None:
    with pytest.raises(ValueError) as raised:
        Backoff(**settings)
    assert str(raised.value).startswith("invalid backoff Backoff(")


def test_a_backoff_at_its_bounds_is_accepted() -> None:
    # No wait at all, a fixed wait and a wait that may drop to nothing are all meant.
    assert Backoff(initial=0, maximum=0).initial == 0
    assert Backoff(jitter=0).jitter == 0
    assert Backoff(jitter=1).jitter == 1
    assert Backoff(initial=3, maximum=3).maximum == 3


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after": "3"}, 3.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after-ms": "soon", "retry-after": "9"}, 9.0),
        ({"retry-after": "-4"}, 0.0),
        ({"retry-after": "whenever"}, None),
        ({}, None),
    ],
)
def test_retry_after_headers(headers: dict[str, str], seconds: float | None) -> None:
    assert _retry_after(headers) == seconds


def test_retry_after_as_an_http_date() -> None:
    when = email.utils.formatdate(time.time() + 20, usegmt=True)
    seconds = _retry_after({"retry-after": when})
    assert seconds is not None and 18 <= seconds <= 20


# -- end to end: each retry is logged with its reason ------------------------------------------------


@pytest.fixture
def records() -> Iterator[list[Any]]:
    captured: list[Any] = []
    rxllm._log.enable_logging()
    sink = logger.add(captured.append, level="TRACE", format="{message}")
    try:
        yield captured
    finally:
        logger.remove(sink)
        rxllm._log.disable_logging()


async def test_each_retry_is_logged_with_its_reason(
    fault_server: StartFaultServer, records: list[Any]
) -> None:
    server = await fault_server(
        Step(status=503, body=b"busy"),
        Step(pieces=[ROLE, in_stream_error("Overloaded", "overloaded_error")]),
        Step(pieces=text_stream("Hi")),
    )
    request = CompletionRequest([Message.user("Hello")])
    async with OpenAIChat(MODEL, base_url=server.base_url, backoff=Backoff(initial=0.01, jitter=0)) as chat:
        result = await collect_events(chat.stream(request))
    assert result.completed
    retries = [r.record for r in records if r.record["level"].name == "WARNING"]
    assert [r["message"] for r in retries] == [
        f"retrying {MODEL} in 0.01 s (retry 1 of 2): HTTP 503",
        f"retrying {MODEL} in 0.02 s (retry 2 of 2): overloaded_error in the stream",
    ]
    assert [r["extra"]["rxllm.reason"] for r in retries] == ["HTTP 503", "overloaded_error in the stream"]
    assert [r["extra"]["error.type"] for r in retries] == ["InternalServerError", "OverloadedError"]
    assert all(r["extra"]["gen_ai.request.model"] == MODEL for r in retries)
    assert all(r["extra"]["gen_ai.operation.name"] == "chat" for r in retries)
    assert all(r["name"] == "rxllm.providers._base" for r in retries)
    assert server.request_count == 3


# -- mid-stream resends ------------------------------------------------------------------------------

LOST = StreamTruncatedError("the connection dropped mid-stream", connection_lost=True)
RESENDING = RetryPolicy(midstream_retries=2, backoff=Backoff(initial=2, maximum=8, jitter=0))


def reset(attempt: int, reason: str = "connection lost mid-stream") -> StreamReset:
    return StreamReset(attempt=attempt, reason=reason)


def test_retry_turn_resends_after_delivered_items_with_a_reset_first() -> None:
    local: dict[str | float, object] = {**values, "R": reset(2), "c": "c"}
    with marbles_testing() as (start, cold, _hot, exp):
        source = attempts(cold("-a-b-#", values, LOST), cold("-c-|", local, None))
        # Lost at 5: the reset at once, the resend after 2.
        assert start(source.pipe(retry_turn(RESENDING))) == exp("-a-b-R--c-|", local, None)


def test_retry_turn_gives_the_last_error_when_the_resends_are_spent() -> None:
    local: dict[str | float, object] = {**values, "R": reset(2), "S": reset(3, "malformed chunk")}
    broken = ChunkDecodeError("invalid JSON", "{")
    with marbles_testing() as (start, cold, _hot, exp):
        source = attempts(
            cold("-a-#", values, LOST), cold("-a-#", values, broken), cold("-a-#", values, BUSY)
        )
        result = start(source.pipe(retry_turn(RESENDING)))
        # Resends wait 2, then 4; the third attempt's error ends it: the budget (2) is spent.
        assert result == exp("-a-R--a-S----a-#", local, BUSY)
    assert isinstance(result[-1].value, OnError) and result[-1].value.exception is BUSY


def test_retry_turn_never_resends_what_cannot_succeed() -> None:
    local: dict[str | float, object] = {**values}
    with marbles_testing() as (start, cold, _hot, exp):
        source = attempts(cold("-a-#", values, DENIED), cold("-b-|", values, None))
        assert start(source.pipe(retry_turn(RESENDING))) == exp("-a-#", local, DENIED)


def test_retry_turn_without_resends_announces_each_retry_and_never_resends() -> None:
    local: dict[str | float, object] = {
        **values,
        "w": Retrying(attempt=2, delay=2.0, reason="HTTP 503", status=503),
    }
    with marbles_testing() as (start, cold, _hot, exp):
        source = attempts(cold("#", None, BUSY), cold("-a-#", values, LOST), cold("-b-|", values, None))
        assert start(source.pipe(retry_turn(STEADY))) == exp("w--a-#", local, LOST)


def test_retry_turn_keeps_retries_before_the_first_event_apart() -> None:
    # 503 before any item: a retry (max_retries), announced by Retrying; then a loss after an item: a
    # resend. The backoff counts both: the resend is the turn's second failure and waits 4, not 2.
    local: dict[str | float, object] = {
        **values,
        "w": Retrying(attempt=2, delay=2.0, reason="HTTP 503", status=503),
        "R": reset(3),
        "c": "c",
    }
    with marbles_testing() as (start, cold, _hot, exp):
        source = attempts(cold("#", None, BUSY), cold("-a-#", values, LOST), cold("-c-|", local, None))
        heard: list[Retry] = []
        result = start(source.pipe(retry_turn(RESENDING, on_retry=heard.append)))
        assert result == exp("w--a-R----c-|", local, None)
    assert heard == [
        Retry(1, 2, "HTTP 503", 2.0, BUSY),
        Retry(1, 2, "connection lost mid-stream", 4.0, LOST, midstream=True),
    ]


def test_the_retry_turn_marble_of_its_docstring() -> None:
    local: dict[str | float, object] = {
        "a": "a",
        "b": "b",
        "c": "c",
        "d": "d",
        "w": Retrying(attempt=2, delay=2.0, reason="HTTP 503", status=503),
        "R": reset(3),
    }
    policy = RetryPolicy(midstream_retries=1, backoff=Backoff(initial=2, jitter=0))
    with marbles_testing() as (start, cold, _hot, exp):
        source = attempts(cold("#", None, BUSY), cold("-a-b-#", local, LOST), cold("-c-d-|", local, None))
        assert start(source.pipe(retry_turn(policy))) == exp("w--a-b-R----c-d-|", local, None)


def test_a_retry_after_a_resend_is_announced_with_the_next_attempt_and_a_longer_wait() -> None:
    local: dict[str | float, object] = {
        **values,
        "R": reset(2),
        "w": Retrying(attempt=3, delay=4.0, reason="HTTP 503", status=503),
        "c": "c",
    }
    with marbles_testing() as (start, cold, _hot, exp):
        source = attempts(cold("-a-#", values, LOST), cold("#", None, BUSY), cold("-c|", local, None))
        assert start(source.pipe(retry_turn(RESENDING))) == exp("-a-R-w----c|", local, None)


def test_retrying_before_the_first_event_does_not_count_as_the_first_event() -> None:
    # A failure right after the announcement is still before the first event: retried again (max_retries),
    # never delivered as if content had come, and never resent with a StreamReset.
    local: dict[str | float, object] = {
        **values,
        "w": Retrying(attempt=2, delay=2.0, reason="HTTP 503", status=503),
        "x": Retrying(attempt=3, delay=4.0, reason="HTTP 503", status=503),
    }
    with marbles_testing() as (start, cold, _hot, exp):
        source = attempts(cold("#", None, BUSY), cold("#", None, BUSY), cold("-a|", values, None))
        assert start(source.pipe(retry_turn(RESENDING))) == exp("w-x----a|", local, None)


def test_an_upstream_announcement_is_not_content_for_a_retry_downstream() -> None:
    # A retry operator over a stream that announces its own retries (a provider's): the inner
    # Retrying passes, and the failure after it is still before the first event.
    inner = Retrying(attempt=2, delay=0.5, reason="connection failed")
    local: dict[str | float, object] = {**values, "w": inner}
    with marbles_testing() as (start, cold, _hot, exp):
        source = attempts(cold("w#", local, BUSY), cold("-a|", values, None))
        assert start(source.pipe(retry_before_first_event(STEADY))) == exp("w---a|", local, None)


def test_an_on_retry_that_raises_ends_the_stream_with_a_callback_error() -> None:
    broken = ValueError("my logger broke")

    def on_retry(_retry: Retry) -> None:
        raise broken

    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(on_error(10, BUSY))
    results = scheduler.start(lambda: xs.pipe(retry_turn(STEADY, on_retry=on_retry)))
    assert len(results.messages) == 1
    notification = results.messages[0].value
    assert results.messages[0].time == 210
    assert isinstance(notification, OnError)
    error = notification.exception
    assert type(error) is CallbackError
    assert (error.callback, str(error)) == ("on_retry", "on_retry raised ValueError: my logger broke")
    assert error.__cause__ is broken
    assert xs.subscriptions == [subscribe(200, 210)], "no retry after the callback failed"


def test_an_on_retry_that_raises_at_a_resend_ends_the_stream_too() -> None:
    def on_retry(_retry: Retry) -> None:
        raise RuntimeError("no")

    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(on_next(10, "a"), on_error(20, LOST))
    results = scheduler.start(lambda: xs.pipe(retry_turn(RESENDING, on_retry=on_retry)))
    assert [message.time for message in results.messages] == [210, 220]
    notification = results.messages[1].value
    assert isinstance(notification, OnError) and type(notification.exception) is CallbackError
    assert xs.subscriptions == [subscribe(200, 220)]


def test_plan_waits_by_the_turns_failures_and_counts_against_its_own_budget() -> None:
    policy = RetryPolicy(max_retries=1, midstream_retries=1, backoff=Backoff(initial=1, jitter=0))
    assert policy.plan(BUSY, 1, lambda: 0.5, failures=3) == ("HTTP 503", 4.0)
    assert policy.plan(BUSY, 2, lambda: 0.5, failures=3) is None, "max_retries=1 is spent"
    assert policy.plan_resend(LOST, 1, lambda: 0.5, failures=2) == ("connection lost mid-stream", 2.0)


def test_disposing_during_a_resend_wait_unsubscribes_everything() -> None:
    scheduler = TestScheduler()
    first = scheduler.create_cold_observable(on_next(10, "a"), on_error(20, LOST))
    second = scheduler.create_cold_observable(on_next(10, "b"), on_completed(20))
    results = scheduler.start(lambda: attempts(first, second).pipe(retry_turn(RESENDING)), disposed=221)
    assert results.messages == [on_next(210, "a"), on_next(220, reset(2))]
    assert first.subscriptions == [subscribe(200, 220)]
    assert second.subscriptions == []


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (StreamTruncatedError("dropped", connection_lost=True), "connection lost mid-stream"),
        (StreamTruncatedError("no [DONE]"), "stream ended without its end marker"),
        (ChunkDecodeError("invalid JSON", "{"), "malformed chunk"),
        (SseError("invalid UTF-8"), "invalid event stream"),
        (StreamTimeoutError("idle", 30), "idle timeout"),
        (TransportError("reset"), "connection failed"),
        (ProviderError("Overloaded", type="overloaded_error"), "overloaded_error in the stream"),
        (ProviderError("boom", code="502"), "error 502 in the stream"),
        (ProviderError("slow down", status=429), "HTTP 429"),
    ],
)
def test_what_is_resent_mid_stream(error: Exception, reason: str) -> None:
    assert RetryPolicy().resend_reason(error) == reason


@pytest.mark.parametrize(
    "error",
    [
        StreamTimeoutError("first_event", 600),
        StreamTimeoutError("total", 60),
        EventTooLargeError(4096),
        ResponseTooLargeError(2000),
        ProviderError("bad schema", type="invalid_request_error"),
        *(ProviderError("no", status=status) for status in sorted(NEVER_RETRY_STATUSES)),
        NotEventStreamError("application/json", b'{"choices": []}'),
        ValueError("a bug"),
    ],
)
def test_what_is_never_resent(error: Exception) -> None:
    assert RetryPolicy(midstream_retries=5).resend_reason(error) is None
    assert RetryPolicy(midstream_retries=5).plan_resend(error, 1, lambda: 0.5) is None


def test_resends_are_bounded_and_wait_like_retries() -> None:
    policy = RetryPolicy(midstream_retries=2, backoff=Backoff(initial=1, jitter=0))
    assert policy.plan_resend(LOST, 1, lambda: 0.5) == ("connection lost mid-stream", 1.0)
    assert policy.plan_resend(LOST, 2, lambda: 0.5) == ("connection lost mid-stream", 2.0)
    assert policy.plan_resend(LOST, 3, lambda: 0.5) is None
    assert RetryPolicy().plan_resend(LOST, 1, lambda: 0.5) is None, "off by default"
    with pytest.raises(ValueError, match="midstream_retries"):
        RetryPolicy(midstream_retries=-1)
