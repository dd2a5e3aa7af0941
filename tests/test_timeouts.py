"""Timeouts: the settings, the two timeout operators (marbles, with pause), and each limit end to end."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import reactivex
from conftest import collect_events, rxllm_tasks_finish
from fault_server import MODEL, StartFaultServer, Step, chat_chunk, fault_server, text_stream
from reactivex import Observable
from reactivex.notification import OnError
from reactivex.scheduler.eventloop import AsyncIOScheduler
from reactivex.testing import ReactiveTest, TestScheduler
from reactivex.testing.marbles import marbles_testing

from rxllm.control import PauseControl
from rxllm.errors import ProviderError, StreamTimeoutError
from rxllm.events import Final, TextDelta
from rxllm.messages import Message
from rxllm.providers.anthropic import AnthropicMessages
from rxllm.providers.openai import OpenAIChat
from rxllm.request import CompletionRequest
from rxllm.retry import Backoff
from rxllm.testing import Turn, sse_bytes
from rxllm.timeouts import Timeouts, progress_timeout, total_timeout

__all__ = ["fault_server"]

on_next, on_error, on_completed, subscribe = (
    ReactiveTest.on_next,
    ReactiveTest.on_error,
    ReactiveTest.on_completed,
    ReactiveTest.subscribe,
)
HELLO = CompletionRequest([Message.user("Hello")])
values: dict[str | float, object] = {"a": "a", "b": "b", "c": "c", "d": "d", "e": "e"}
IDLE = StreamTimeoutError("idle", 4)
FIRST = StreamTimeoutError("first_event", 3)
TOTAL = StreamTimeoutError("total", 6)


# -- settings ----------------------------------------------------------------------------------------


def test_defaults_never_hang() -> None:
    timeouts = Timeouts()
    assert (timeouts.connect, timeouts.first_event, timeouts.idle, timeouts.total) == (
        10.0,
        600.0,
        300.0,
        None,
    )


@pytest.mark.parametrize("name", ["connect", "first_event", "idle", "total"])
@pytest.mark.parametrize("value", [0, -1.0])
def test_limits_must_be_positive(name: str, value: float) -> None:
    with pytest.raises(ValueError, match=f"Timeouts.{name} must be a positive number of seconds or None"):
        Timeouts(**{name: value})


def test_provider_takes_timeouts() -> None:
    provider = OpenAIChat(MODEL, base_url="http://127.0.0.1:9/v1", timeouts=Timeouts(idle=5, total=60))
    assert provider.timeouts == Timeouts(idle=5, total=60)
    assert OpenAIChat(MODEL, base_url="http://127.0.0.1:9/v1").timeouts == Timeouts()


# -- progress_timeout --------------------------------------------------------------------------------


def test_idle_gap_times_out() -> None:
    with marbles_testing() as (start, cold, _hot, exp):
        source = cold("-a--b------c-|", values, None)
        assert start(source.pipe(progress_timeout(3, 4))) == exp("-a--b---#", values, IDLE)


def test_first_event_times_out() -> None:
    with marbles_testing() as (start, cold, _hot, exp):
        source = cold("-----a-|", values, None)
        assert start(source.pipe(progress_timeout(3, 4))) == exp("---#", values, FIRST)


def test_items_in_time_pass_through() -> None:
    with marbles_testing() as (start, cold, _hot, exp):
        source = cold("--a---b---c-|", values, None)
        assert start(source.pipe(progress_timeout(3, 4))) == exp("--a---b---c-|", values, None)


def test_the_timeout_unsubscribes_the_source_before_the_error() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(on_next(1, "a"), on_next(10, "b"))
    results = scheduler.start(lambda: xs.pipe(progress_timeout(3, 4)))
    assert results.messages == [on_next(201, "a"), on_error(205, IDLE)]
    assert xs.subscriptions == [subscribe(200, 205)]
    error = results.messages[-1].value
    assert isinstance(error, OnError) and isinstance(error.exception, StreamTimeoutError)


def test_no_limits_is_the_source_itself() -> None:
    source: Observable[Any] = Observable()
    assert progress_timeout(None, None)(source) is source
    assert total_timeout(None)(source) is source


def test_only_idle() -> None:
    with marbles_testing() as (start, cold, _hot, exp):
        source = cold("------a-----b|", values, None)
        assert start(source.pipe(progress_timeout(None, 4))) == exp("------a---#", values, IDLE)


def _pause_at(scheduler: TestScheduler, control: PauseControl, pause: float, resume: float | None) -> None:
    scheduler.schedule_absolute(pause, lambda _s, _t: control.pause())
    if resume is not None:
        scheduler.schedule_absolute(resume, lambda _s, _t: control.resume())


def test_no_idle_timeout_while_paused_and_a_fresh_window_on_resume() -> None:
    scheduler = TestScheduler()
    control = PauseControl()
    xs = scheduler.create_cold_observable(on_next(1, "a"), on_next(13, "b"), on_completed(14))
    _pause_at(scheduler, control, 203, 210)
    results = scheduler.start(lambda: xs.pipe(progress_timeout(3, 4, pause=control)))
    # Paused from 203 to 210: the gap a..b is 12 > 4, but only 3 of it unpaused.
    assert results.messages == [on_next(201, "a"), on_next(213, "b"), on_completed(214)]


def test_after_resume_the_idle_window_runs_again() -> None:
    scheduler = TestScheduler()
    control = PauseControl()
    xs = scheduler.create_cold_observable(on_next(1, "a"))
    _pause_at(scheduler, control, 203, 210)
    results = scheduler.start(lambda: xs.pipe(progress_timeout(3, 4, pause=control)))
    assert results.messages == [on_next(201, "a"), on_error(214, IDLE)]


def test_paused_before_the_first_event() -> None:
    scheduler = TestScheduler()
    control = PauseControl(paused=True)
    xs = scheduler.create_cold_observable(on_next(50, "a"), on_completed(51))
    scheduler.schedule_absolute(240, lambda _s, _t: control.resume())
    results = scheduler.start(lambda: xs.pipe(progress_timeout(3, 4, pause=control)))
    assert results.messages == [on_error(243, FIRST)]
    assert xs.subscriptions == [subscribe(200, 243)]


# -- total_timeout -----------------------------------------------------------------------------------


def test_total_times_out() -> None:
    with marbles_testing() as (start, cold, _hot, exp):
        source = cold("-a-b-c-d-e-|", values, None)
        assert start(source.pipe(total_timeout(6))) == exp("-a-b-c#", values, TOTAL)


def test_total_in_time() -> None:
    with marbles_testing() as (start, cold, _hot, exp):
        source = cold("-a-b-|", values, None)
        assert start(source.pipe(total_timeout(6))) == exp("-a-b-|", values, None)


def test_total_does_not_count_paused_time() -> None:
    scheduler = TestScheduler()
    control = PauseControl()
    xs = scheduler.create_cold_observable(on_next(1, "a"), on_next(9, "b"), on_next(20, "c"))
    _pause_at(scheduler, control, 202, 207)
    results = scheduler.start(lambda: xs.pipe(total_timeout(6, pause=control)))
    # 2 unpaused, 5 paused, then 4 more unpaused: 6 used at 211.
    assert results.messages == [on_next(201, "a"), on_next(209, "b"), on_error(211, TOTAL)]
    assert xs.subscriptions == [subscribe(200, 211)]


def test_total_adds_up_every_unpaused_stretch() -> None:
    scheduler = TestScheduler()
    control = PauseControl()
    xs = scheduler.create_cold_observable(on_next(1, "a"))
    _pause_at(scheduler, control, 202, 205)
    _pause_at(scheduler, control, 208, 210)
    results = scheduler.start(lambda: xs.pipe(total_timeout(6, pause=control)))
    # 2, then 3, then 1 more unpaused: 6 used at 211.
    assert results.messages == [on_next(201, "a"), on_error(211, TOTAL)]


def test_total_paused_from_the_start_counts_from_the_resume() -> None:
    scheduler = TestScheduler()
    control = PauseControl(paused=True)
    xs = scheduler.create_cold_observable(on_next(20, "a"))
    scheduler.schedule_absolute(210, lambda _s, _t: control.resume())
    results = scheduler.start(lambda: xs.pipe(total_timeout(6, pause=control)))
    assert results.messages == [on_error(216, TOTAL)]


def test_progress_a_second_before_the_idle_deadline_moves_it() -> None:
    # The idle timer set at 201 is due at 205; b at 202 moved the deadline to 206: at 205 the timer
    # re-arms for the second left, and the limit runs out at 206.
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(on_next(1, "a"), on_next(2, "b"))
    results = scheduler.start(lambda: xs.pipe(progress_timeout(None, 4)))
    assert results.messages == [on_next(201, "a"), on_next(202, "b"), on_error(206, IDLE)]


async def test_subscribed_from_another_thread_the_limit_runs_on_the_schedulers_loop() -> None:
    loop = asyncio.get_running_loop()
    seen: list[tuple[Exception, int]] = []
    ended = threading.Event()

    def on_error(error: Exception) -> None:
        seen.append((error, threading.get_ident()))
        ended.set()

    def subscribe() -> None:  # on a thread with no running loop: only the scheduler names one
        reactivex.never().pipe(progress_timeout(0.05, None)).subscribe(
            on_error=on_error, scheduler=AsyncIOScheduler(loop)
        )

    await asyncio.to_thread(subscribe)
    assert await asyncio.to_thread(ended.wait, 5)
    ((error, thread),) = seen
    assert (type(error), str(error), thread) == (
        StreamTimeoutError,
        "first_event timeout: no progress within 0.05 s",
        threading.get_ident(),
    )


# -- end to end --------------------------------------------------------------------------------------


async def test_a_paused_stream_does_not_time_out(fault_server: StartFaultServer) -> None:
    server = await fault_server(Step(pieces=text_stream("Hel", "lo"), delay=0.05))
    control = PauseControl(paused=True)
    async with OpenAIChat(
        MODEL, base_url=server.base_url, timeouts=Timeouts(first_event=0.3, idle=0.3)
    ) as chat:
        events: list[Any] = []
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        chat.stream(HELLO, pause=control).subscribe(
            events.append, done.set_result, lambda: done.set_result("completed")
        )
        await asyncio.sleep(1.0)  # the condition under test: paused for longer than both limits
        assert events == [] and not done.done()
        assert server.request_count == 1  # the stream was live (its limits running) while paused
        control.resume()
        assert await asyncio.wait_for(done, 5) == "completed"
    assert events == [
        TextDelta(text="Hel"),
        TextDelta(text="lo"),
        Final(finish_reason="stop", response_id="chatcmpl-1", model=MODEL, usage_complete=False),
    ]
    assert server.request_count == 1


async def test_limits_set_on_a_provider_later_apply_to_its_next_turn(fault_server: StartFaultServer) -> None:
    # A provider makes its turn operators once; replacing its timeouts makes them anew.
    server = await fault_server(
        Step(pieces=text_stream("ok"), first_delay=0.5), Step(pieces=text_stream("ok"), first_delay=0.5)
    )
    async with OpenAIChat(MODEL, base_url=server.base_url) as chat:
        first = await collect_events(chat.stream(HELLO))
        assert first.error is None and first.events[0] == TextDelta(text="ok")
        chat.timeouts = Timeouts(first_event=0.2)
        second = await collect_events(chat.stream(HELLO))
    assert isinstance(second.error, StreamTimeoutError)
    assert (second.error.which, second.error.seconds) == ("first_event", 0.2)
    assert server.request_count == 2


async def test_total_timeout_closes_the_connection(fault_server: StartFaultServer) -> None:
    pieces = [chat_chunk({"content": f"{i} "}) for i in range(1000)]
    server = await fault_server(Step(pieces=pieces, delay=0.02))
    async with OpenAIChat(MODEL, base_url=server.base_url, timeouts=Timeouts(total=0.4, idle=5)) as chat:
        started = time.monotonic()
        result = await collect_events(chat.stream(HELLO))
        assert time.monotonic() - started >= 0.4
        assert isinstance(result.error, StreamTimeoutError)
        assert (result.error.which, result.error.seconds) == ("total", 0.4)
        texts = [event.text for event in result.events]
        assert 0 < len(texts) < 1000 and texts == [f"{i} " for i in range(len(texts))]
        await asyncio.wait_for(server.all_closed.wait(), 2)
    assert server.request_count == 1


async def test_total_covers_retries_and_their_waits(fault_server: StartFaultServer) -> None:
    # Retries without end (503 every time, waits of 0.3 s): the total limit of 1 s ends them, during a wait or
    # an attempt, after at least one wait (a second request) and at most the four requests 1 s has room for.
    server = await fault_server(Step(status=503, body=b"busy"))
    slow = Backoff(initial=0.3, maximum=0.3, jitter=0)
    async with OpenAIChat(
        MODEL, base_url=server.base_url, backoff=slow, max_retries=100, timeouts=Timeouts(total=1.0)
    ) as chat:
        started = time.monotonic()
        result = await collect_events(chat.stream(HELLO))
        elapsed = time.monotonic() - started
    assert isinstance(result.error, StreamTimeoutError) and result.error.which == "total"
    assert elapsed >= 1.0
    assert 2 <= server.request_count <= 4


async def test_a_retry_resets_nothing_but_the_attempt(fault_server: StartFaultServer) -> None:
    # The first event limit is per attempt: a quick 503 then a normal stream is fine.
    server = await fault_server(
        Step(status=503, body=b"busy"), Step(pieces=text_stream("ok"), first_delay=0.2)
    )
    fast = Backoff(initial=0.2, maximum=0.2, jitter=0)
    async with OpenAIChat(
        MODEL, base_url=server.base_url, backoff=fast, timeouts=Timeouts(first_event=0.3)
    ) as chat:
        result = await collect_events(chat.stream(HELLO))
    assert result.completed
    assert server.request_count == 2


@pytest.fixture
def unanswered_port() -> Iterator[int]:
    """A port whose listen backlog is full: a new connection attempt hangs until it times out."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        try:
            filler.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(filler)
    yield port
    for filler in fillers:
        filler.close()
    listener.close()


async def test_connect_timeout_is_retried_then_reported(unanswered_port: int) -> None:
    fast = Backoff(initial=0.01, maximum=0.01)
    base_url = f"http://127.0.0.1:{unanswered_port}/v1"
    async with OpenAIChat(MODEL, base_url=base_url, backoff=fast, timeouts=Timeouts(connect=0.2)) as chat:
        started = time.monotonic()
        result = await collect_events(chat.stream(HELLO))
    assert isinstance(result.error, StreamTimeoutError)
    assert (result.error.which, result.error.seconds) == ("connect", 0.2)
    assert (
        str(result.error) == f"connect timeout: no progress within 0.2 s [POST {base_url}/chat/completions]"
    )
    assert [type(event).__name__ for event in result.events] == ["Retrying", "Retrying"]
    assert time.monotonic() - started >= 0.6, "three attempts of 0.2 s each"


async def test_provider_error_is_not_a_timeout(fault_server: StartFaultServer) -> None:
    server = await fault_server(Step(status=401, body=b'{"error": {"message": "no"}}'))
    async with OpenAIChat(MODEL, base_url=server.base_url, timeouts=Timeouts(first_event=0.2)) as chat:
        result = await collect_events(chat.stream(HELLO))
        await rxllm_tasks_finish()  # nothing of the stream runs any more that could send a retry
    assert isinstance(result.error, ProviderError)
    assert server.request_count == 1


async def test_keep_alive_events_are_progress_for_the_idle_limit(fault_server: StartFaultServer) -> None:
    # Anthropic's `ping` events make no assistant event, yet the server is not idle: 2 s of pings a
    # tenth of a second apart, under an idle limit of 1 s, end in a whole turn.
    pieces = sse_bytes(Turn(text=["Hel", "lo"]), "anthropic", model=MODEL)
    ping = b'event: ping\ndata: {"type": "ping"}\n\n'
    text_at = next(n for n, piece in enumerate(pieces) if b"Hel" in piece) + 1
    paced = [*pieces[:text_at], *[ping] * 20, *pieces[text_at:]]
    server = await fault_server(Step(pieces=paced, delay=0.1))
    origin = server.base_url.removesuffix("/v1")
    async with AnthropicMessages(MODEL, base_url=origin, timeouts=Timeouts(idle=1.0)) as model:
        result = await collect_events(model.stream(HELLO))
    assert result.error is None and result.completed
    assert [event for event in result.events if isinstance(event, TextDelta)] == [
        TextDelta(text="Hel"),
        TextDelta(text="lo"),
    ]
    assert server.request_count == 1
