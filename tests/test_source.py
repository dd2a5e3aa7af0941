"""The HTTP source (transport._source): one POST per subscription, its body bounded, timed and decoded."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from typing import Any

import pytest
import reactivex
from conftest import Reply, Server, collect_events
from loguru import logger
from reactivex import abc

import rxllm._log
from rxllm.control import Listener, PauseControl
from rxllm.errors import EventTooLargeError, ResponseTooLargeError, StreamTimeoutError
from rxllm.transport._fusion import subscribe_fused
from rxllm.transport._http import HttpClient
from rxllm.transport._source import _Pump, decoded, http_events, sse_source
from rxllm.transport.sse import SseDecoder, SseEvent

BLANK = b"\n\n"
A, B, C = (b"data: " + name + BLANK for name in (b"a", b"b", b"c"))  # 9 bytes each
EVENTS = [SseEvent(data="a"), SseEvent(data="b"), SseEvent(data="c")]
# The server waits between pieces so that each arrives as a read of its own.
PACED = 0.05


@pytest.fixture
async def client() -> AsyncIterator[HttpClient]:
    made = HttpClient()
    yield made
    await made.aclose()


def events(client: HttpClient, server: Server, **options: Any) -> Any:
    options.setdefault("decoder", SseDecoder)
    return http_events(client, f"{server.base_url}/stream", body=b"{}", headers={}, **options)


class Raw(abc.ObserverBase[Any]):
    """A raw observer: records every call; ``dispose_at`` disposes ``subscription`` at that event."""

    def __init__(self, dispose_at: int | None = None) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.dispose_at = dispose_at
        self.subscription: abc.DisposableBase | None = None

    def on_next(self, value: Any) -> None:
        self.calls.append(("next", value))
        if len(self.calls) == self.dispose_at and self.subscription is not None:
            self.subscription.dispose()

    def on_error(self, error: Exception) -> None:
        self.calls.append(("error", error))

    def on_completed(self) -> None:
        self.calls.append(("completed", None))


class CountingControl(PauseControl):
    """A ``PauseControl`` that counts the listeners attached to it."""

    def __init__(self) -> None:
        super().__init__()
        self.listening = 0

    def add_listener(self, listener: Listener) -> abc.DisposableBase:
        self.listening += 1
        inner = super().add_listener(listener)

        class Remove(abc.DisposableBase):
            def dispose(_self) -> None:
                self.listening -= 1
                inner.dispose()

        return Remove()


async def test_without_limits_it_emits_the_events_and_completes(sse_server: Any, client: HttpClient) -> None:
    server = await sse_server(Reply([A + B, C]))
    result = await collect_events(events(client, server))
    assert (result.events, result.error, result.completed) == (EVENTS, None, True)
    assert [request.body for request in server.requests] == [b"{}"]


async def test_a_body_of_exactly_max_response_size_bytes_is_read_whole(
    sse_server: Any, client: HttpClient
) -> None:
    server = await sse_server(Reply([A, B, C], delay=PACED))
    result = await collect_events(events(client, server, max_response_size=27))
    assert (result.events, result.error, result.completed) == (EVENTS, None, True)


@pytest.mark.parametrize("name_errors", [False, True])
async def test_one_byte_more_than_max_response_size_counted_over_every_piece_fails(
    sse_server: Any, client: HttpClient, name_errors: bool
) -> None:
    server = await sse_server(Reply([A, B, C], delay=PACED))
    result = await collect_events(events(client, server, max_response_size=26, name_errors=name_errors))
    error = result.error
    assert isinstance(error, ResponseTooLargeError)
    url = f"{server.base_url}/stream"
    message = "the response exceeded 26 bytes (raise max_response_size to allow it)"
    if name_errors:
        assert (str(error), error.limit, error.method, error.url) == (
            f"{message} [POST {url}]",
            26,
            "POST",
            url,
        )
    else:
        assert (str(error), error.limit, error.method, error.url) == (message, 26, None, None)
    assert result.events == EVENTS[:2]  # each piece is counted as it is read: the third crosses the bound


@pytest.mark.parametrize(
    ("pieces", "limits", "which", "delivered"),
    [([], {"first_event": 0.2}, "first_event", []), ([A], {"idle": 0.2}, "idle", EVENTS[:1])],
)
async def test_a_progress_limit_given_alone_is_kept(
    sse_server: Any,
    client: HttpClient,
    pieces: list[bytes],
    limits: dict[str, float],
    which: str,
    delivered: list[SseEvent],
) -> None:
    server = await sse_server(Reply(pieces, hold_open=30))
    result = await collect_events(events(client, server, **limits))
    assert isinstance(result.error, StreamTimeoutError)
    assert (result.error.which, result.error.seconds, result.events) == (which, 0.2, delivered)


async def test_an_error_after_events_in_a_piece_ends_the_stream_without_reading_on(
    sse_server: Any, client: HttpClient
) -> None:
    big = b"data: " + b"x" * 100 + BLANK
    server = await sse_server(Reply([A + big], hold_open=30))
    decoder = functools.partial(SseDecoder, max_event_size=50)
    result = await collect_events(events(client, server, decoder=decoder), timeout=5)
    assert isinstance(result.error, EventTooLargeError)
    assert (result.events, result.error.limit) == (EVENTS[:1], 50)


@pytest.mark.parametrize("end", ["completed", "disposed"])
async def test_the_window_listens_to_the_pause_while_it_runs_and_not_after(
    sse_server: Any, client: HttpClient, end: str
) -> None:
    pause = CountingControl()
    server = await sse_server(Reply([A], hold_open=30 if end == "disposed" else 0))
    listening: list[int] = []
    first = asyncio.Event()

    class Watching(Raw):
        def on_next(self, value: Any) -> None:
            listening.append(pause.listening)
            first.set()
            super().on_next(value)

    raw = Watching()
    source = events(client, server, pause=pause, idle=30, first_event=30)
    subscription = subscribe_fused(source, raw, None)
    assert isinstance(subscription, _Pump)
    await asyncio.wait_for(first.wait(), 5)
    if end == "disposed":
        subscription.dispose()
    task = subscription.task
    assert task is not None
    await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 5)
    expected = [("next", EVENTS[0])] + ([("completed", None)] if end == "completed" else [])
    assert (listening, pause.listening, raw.calls) == ([1], 0, expected)


async def test_a_dispose_from_inside_on_next_stops_reading(sse_server: Any, client: HttpClient) -> None:
    server = await sse_server(Reply([A, B, C], delay=PACED))
    raw = Raw(dispose_at=1)
    subscription = subscribe_fused(events(client, server), raw, None)
    assert isinstance(subscription, _Pump)
    raw.subscription = subscription
    task = subscription.task
    assert task is not None
    await asyncio.wait_for(task, 5)
    assert raw.calls == [("next", EVENTS[0])]


async def test_at_trace_each_event_is_logged_with_the_bytes_of_its_piece(
    sse_server: Any, client: HttpClient
) -> None:
    captured: list[Any] = []
    handler = logger.add(captured.append, level="TRACE", format="{message}")
    rxllm._log.enable_logging()
    try:
        server = await sse_server(Reply([A + B]))
        result = await collect_events(events(client, server))
    finally:
        logger.remove(handler)
        rxllm._log.disable_logging()
    assert result.completed
    traced = [m.record["message"] for m in captured if m.record["name"] == "rxllm.transport._source"]
    assert traced == ["event SseEvent from 18 bytes read"] * 2


class Failing:
    """A ``PieceDecoder`` whose ``feed`` raises; records what ``failed`` was told."""

    def __init__(self, raised: Exception) -> None:
        self.raised = raised
        self.told: list[Exception] = []
        self.progressed = False
        self.error: Exception | None = None
        self.ended = False

    def feed(self, piece: bytes) -> list[SseEvent]:
        raise self.raised

    def finish(self) -> list[SseEvent]:
        return []

    def failed(self, error: Exception) -> None:
        self.told.append(error)


def test_decoded_delivers_what_the_decoders_feed_raises_and_tells_the_decoder() -> None:
    boom = ValueError("bad piece")
    made: list[Failing] = []

    def decoder() -> Failing:
        made.append(Failing(boom))
        return made[-1]

    raw = Raw()
    reactivex.of(A).pipe(decoded(decoder)).subscribe(raw)
    assert (raw.calls, [d.told for d in made]) == ([("error", boom)], [[boom]])


def test_decoded_delivers_the_events_before_the_decoders_error_then_the_error() -> None:
    raw = Raw()
    big = b"data: " + b"x" * 100 + BLANK
    reactivex.of(A + big, B).pipe(decoded(functools.partial(SseDecoder, max_event_size=50))).subscribe(raw)
    assert [kind for kind, _ in raw.calls] == ["next", "error"]
    error = raw.calls[1][1]
    assert isinstance(error, EventTooLargeError)
    assert (raw.calls[0], error.limit) == (("next", EVENTS[0]), 50)


class WaitedFor(PauseControl):
    """A ``PauseControl`` that says when a reader first waits on it."""

    def __init__(self, *, paused: bool) -> None:
        super().__init__(paused=paused)
        self.waited = asyncio.Event()

    async def wait_resumed(self) -> None:
        if self.is_paused:
            self.waited.set()
        await super().wait_resumed()


async def test_sse_source_posts_the_body_and_headers_and_reads_while_not_paused(
    sse_server: Any, client: HttpClient
) -> None:
    server = await sse_server(Reply([A, B], delay=PACED))
    pause = WaitedFor(paused=True)
    url = f"{server.base_url}/stream"
    raw = Raw()
    subscribe_fused(
        sse_source(client, url, body=b'{"q": 1}', headers={"x-test": "yes"}, pause=pause), raw, None
    )
    # Paused: the first piece's event is emitted, then the body is not read on until resume.
    await asyncio.wait_for(pause.waited.wait(), 5)
    assert raw.calls == [("next", EVENTS[0])]
    pause.resume()
    result = await collect_events(sse_source(client, url, body=b"{}", headers={}))
    assert raw.calls == [("next", EVENTS[0]), ("next", EVENTS[1]), ("completed", None)]
    assert result.events == EVENTS[:2]
    first = server.requests[0]
    assert (first.path, first.body, first.headers["x-test"]) == ("/v1/stream", b'{"q": 1}', "yes")


@pytest.mark.parametrize(
    ("options", "error"),
    [({"max_event_size": 6}, EventTooLargeError(6)), ({"max_response_size": 17}, ResponseTooLargeError(17))],
)
async def test_sse_source_keeps_its_bounds(
    sse_server: Any, client: HttpClient, options: dict[str, Any], error: Exception
) -> None:
    server = await sse_server(Reply([A, B], delay=PACED))
    source = sse_source(client, f"{server.base_url}/stream", body=b"{}", headers={}, **options)
    result = await collect_events(source)
    assert (type(result.error), str(result.error)) == (type(error), str(error))
    assert result.events == ([] if "max_event_size" in options else EVENTS[:1])
