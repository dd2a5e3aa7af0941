"""Every path ends loud: the lifecycle guarantees of DESIGN.md, each from a failure seen in use.

Each test names what was seen; the server side (requests received, the
connection going away) or an event says when something happened, never a
sleep.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from openai_sse import text_turn, tool_turn
from reactivex import abc

import rxllm
from rxllm import CompletionRequest, Message, PauseControl, TextDelta, Timeouts
from rxllm.control import Listener
from rxllm.errors import CallbackError, EventLoopError, StreamTimeoutError
from rxllm.providers.openai import OpenAIChat

REQUEST = CompletionRequest([Message.user("Hi")])
WORDS = [f"w{n} " for n in range(8)]


@dataclass
class GatedServer:
    """A loopback server that holds every reply until ``release`` is set, and says who came and left."""

    base_url: str = ""
    requests: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    expected: int = 1
    release: asyncio.Event = field(default_factory=asyncio.Event)
    first_sent: threading.Event = field(default_factory=threading.Event)
    left: asyncio.Event = field(default_factory=asyncio.Event)
    replies: list[list[bytes]] = field(default_factory=lambda: [text_turn(*WORDS)])
    """The n-th request gets the n-th reply; the last one answers every request after it."""
    hold_after_first: bool = False


@pytest.fixture
async def gated() -> Any:
    servers: list[TestServer] = []

    async def start(**options: Any) -> GatedServer:
        state = GatedServer(**options)

        async def handler(request: web.Request) -> web.StreamResponse:
            await request.read()
            state.requests += 1
            if state.requests >= state.expected:
                state.arrived.set()
            response = web.StreamResponse(headers={"content-type": "text/event-stream"})
            await response.prepare(request)
            try:
                await state.release.wait()
                pieces = state.replies[min(state.requests, len(state.replies)) - 1]
                for number, piece in enumerate(pieces):
                    await response.write(piece)
                    if number == 0:
                        state.first_sent.set()
                        if state.hold_after_first:
                            await asyncio.Event().wait()  # until the client goes away
            except (ConnectionResetError, asyncio.CancelledError):
                state.left.set()
                raise
            return response

        app = web.Application()
        app.router.add_post("/{tail:.*}", handler)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        state.base_url = f"http://127.0.0.1:{server.port}/v1"
        return state

    yield start
    for server in servers:
        await server.close()


class Recorder(abc.ObserverBase[Any]):
    """A raw observer: records every call, terminals included, however many arrive."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.errors: list[Exception] = []
        self.completions = 0
        self.threads: set[int] = set()
        self.ended = threading.Event()
        try:
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None
        self._done = asyncio.Event() if self._loop is not None else None

    def _end(self) -> None:
        self.ended.set()
        if self._loop is not None and self._done is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._done.set)

    async def wait(self, timeout: float = 20) -> None:
        """Wait for a terminal on the loop the recorder was made on (no executor thread needed)."""
        assert self._done is not None
        await asyncio.wait_for(self._done.wait(), timeout)

    def on_next(self, value: Any) -> None:
        self.threads.add(threading.get_ident())
        self.items.append(value)

    def on_error(self, error: Exception) -> None:
        self.errors.append(error)
        self._end()

    def on_completed(self) -> None:
        self.completions += 1
        self._end()

    @property
    def text(self) -> str:
        return "".join(item.text for item in self.items if isinstance(item, TextDelta))


class CountingControl(PauseControl):
    """A ``PauseControl`` that counts the listeners attached to it."""

    def __init__(self, *, paused: bool = False) -> None:
        super().__init__(paused=paused)
        self.listening = 0

    def add_listener(self, listener: Listener) -> abc.DisposableBase:
        self.listening += 1
        inner = super().add_listener(listener)

        class Remove(abc.DisposableBase):
            def dispose(_self) -> None:
                self.listening -= 1
                inner.dispose()

        return Remove()


# -- 1. one provider, several event loops ------------------------------------------------------


async def test_one_provider_streams_on_four_loops_at_once_each_to_its_end(gated: Any) -> None:
    server = await gated(expected=4)
    provider = OpenAIChat("gpt-4o-mini", base_url=server.base_url, timeouts=Timeouts(idle=10))
    recorders = [Recorder() for _ in range(4)]

    def script(recorder: Recorder) -> None:
        async def main() -> None:
            provider.stream(REQUEST).subscribe(recorder)
            await asyncio.to_thread(recorder.ended.wait, 20)  # made on the test's loop

        asyncio.run(main())

    threads = [threading.Thread(target=script, args=(recorder,)) for recorder in recorders]
    for thread in threads:
        thread.start()
    # All four streams are open at once before the server says a word.
    await asyncio.wait_for(server.arrived.wait(), 10)
    server.release.set()
    for thread in threads:
        await asyncio.to_thread(thread.join, 20)
    for recorder in recorders:
        assert (recorder.errors, recorder.completions, recorder.text) == ([], 1, "".join(WORDS))


async def test_each_loop_owns_its_session_and_its_end_closes_only_that_one(gated: Any) -> None:
    server = await gated()
    server.release.set()
    provider = OpenAIChat("gpt-4o-mini", base_url=server.base_url)
    async with provider:
        here = await rxllm.aiter(provider.stream(REQUEST)).__anext__()
        assert isinstance(here, TextDelta)
        mine = provider._http.owned_session()
        assert mine is not None

        def elsewhere() -> bool:
            async def main() -> bool:
                await collect(provider.stream(REQUEST))
                other = provider._http.owned_session()
                return other is not None and other is not mine

            return asyncio.run(main())

        assert await asyncio.to_thread(elsewhere)
        # The other loop ended and closed its own session; this loop's is open and still works.
        assert not mine.closed
        assert provider._http.owned_session() is mine
        assert (await collect(provider.stream(REQUEST))).completions == 1
    assert mine.closed


async def collect(observable: Any) -> Recorder:
    recorder = Recorder()
    observable.subscribe(recorder)
    await recorder.wait()
    return recorder


# -- 2. the loop shuts down under a live stream --------------------------------------------------


async def test_a_loop_that_ends_under_a_live_stream_ends_it_with_event_loop_error(gated: Any) -> None:
    server = await gated(hold_after_first=True, replies=[text_turn(*WORDS)[1:]])
    server.release.set()
    control = CountingControl()
    recorder = Recorder()
    subscriptions: list[abc.DisposableBase] = []

    def script() -> None:
        async def main() -> None:
            first = asyncio.Event()
            provider = OpenAIChat("gpt-4o-mini", base_url=server.base_url)

            def on_next(event: Any) -> None:
                recorder.on_next(event)
                first.set()

            subscriptions.append(
                provider.stream(REQUEST, pause=control).subscribe(
                    on_next, recorder.on_error, recorder.on_completed
                )
            )
            await first.wait()
            # The script returns while the stream runs: asyncio.run cancels what is left.

        asyncio.run(main())

    await asyncio.to_thread(script)
    assert recorder.completions == 0
    (error,) = recorder.errors
    assert type(error) is EventLoopError
    assert "event loop this stream runs on shut down" in str(error)
    subscriptions[0].dispose()  # never raises, though the loop is closed
    assert control.listening == 0
    await asyncio.wait_for(server.left.wait(), 5)  # and the connection was closed


async def test_a_loop_that_ends_under_a_paused_stream_delivers_what_it_held_then_the_error(
    gated: Any,
) -> None:
    server = await gated(hold_after_first=True, replies=[text_turn(*WORDS)[1:]])
    server.release.set()
    control = PauseControl()
    recorder = Recorder()

    def script() -> None:
        async def main() -> None:
            provider = OpenAIChat("gpt-4o-mini", base_url=server.base_url)
            control.pause()
            provider.stream(REQUEST, pause=control).subscribe(recorder)
            # The first piece is sent (and held by the paused gate); then the script returns.
            await asyncio.to_thread(server.first_sent.wait, 5)
            await held(recorder)

        async def held(_recorder: Recorder) -> None:
            # One more turn of the loop: the piece the server sent has been read and held.
            for _ in range(100):
                await asyncio.sleep(0)

        asyncio.run(main())

    await asyncio.to_thread(script)
    assert [type(item) for item in recorder.items] == [TextDelta]
    assert [type(error) for error in recorder.errors] == [EventLoopError]


# -- 3. subscribed with no running loop and no on_error ----------------------------------------


async def test_subscribing_without_a_loop_and_without_on_error_raises_sends_nothing_starts_no_thread(
    gated: Any,
) -> None:
    server = await gated()
    provider = OpenAIChat("gpt-4o-mini", base_url=server.base_url)
    stream = provider.stream(REQUEST, pause=PauseControl())

    def plain_script() -> tuple[BaseException | None, set[str]]:
        before = {thread.name for thread in threading.enumerate()}
        try:
            stream.subscribe(print)
        except BaseException as error:  # noqa: BLE001 - what the script would see
            return error, {thread.name for thread in threading.enumerate()} - before
        return None, {thread.name for thread in threading.enumerate()} - before

    raised, new_threads = await asyncio.to_thread(plain_script)
    assert type(raised) is EventLoopError
    assert "needs a running asyncio event loop" in str(raised)
    assert new_threads == set()
    assert server.requests == 0


def test_subscribing_without_a_loop_delivers_event_loop_error_to_on_error() -> None:
    provider = OpenAIChat("gpt-4o-mini", base_url="http://127.0.0.1:9/v1")
    recorder = Recorder()
    provider.stream(REQUEST).subscribe(recorder)
    assert ([type(error) for error in recorder.errors], recorder.completions) == ([EventLoopError], 0)


# -- 4. a user callback raises inside the pipe ----------------------------------------------------


async def test_an_on_next_that_raises_ends_the_stream_with_callback_error(gated: Any) -> None:
    server = await gated()
    server.release.set()
    boom = ValueError("boom")

    class Raising(Recorder):
        def on_next(self, value: Any) -> None:
            raise boom

    recorder = Raising()
    async with OpenAIChat("gpt-4o-mini", base_url=server.base_url) as provider:
        provider.stream(REQUEST).subscribe(recorder)
        await recorder.wait(5)
    assert recorder.completions == 0
    (error,) = recorder.errors
    assert type(error) is CallbackError
    assert error.__cause__ is boom
    assert str(error) == "on_next raised ValueError: boom"


async def test_an_on_next_that_raises_without_on_error_is_reported_to_the_loop_at_once(
    gated: Any,
) -> None:
    server = await gated()
    server.release.set()
    loop = asyncio.get_running_loop()
    reported: asyncio.Future[dict[str, Any]] = loop.create_future()
    previous = loop.get_exception_handler()

    def report(_loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if not reported.done():
            reported.set_result(context)

    loop.set_exception_handler(report)

    def on_next(_event: Any) -> None:
        raise ValueError("boom")

    try:
        async with OpenAIChat("gpt-4o-mini", base_url=server.base_url) as provider:
            provider.stream(REQUEST).subscribe(on_next)
            context = await asyncio.wait_for(reported, 5)
    finally:
        loop.set_exception_handler(previous)
    error = context["exception"]
    assert type(error) is CallbackError
    assert type(error.__cause__) is ValueError


# -- 5. PauseControl across loops ------------------------------------------------------------------


async def test_resume_wakes_every_stream_though_one_waiters_loop_has_closed() -> None:
    control = PauseControl(paused=True)

    def a_loop_that_closes_with_its_stream_waiting() -> None:
        dead = asyncio.new_event_loop()
        waiter = dead.create_task(control.wait_resumed())
        dead.run_until_complete(asyncio.sleep(0))  # the waiter registers with the control
        assert not waiter.done()
        waiter._log_destroy_pending = False  # type: ignore[attr-defined]  # it goes with its loop
        dead.close()

    await asyncio.to_thread(a_loop_that_closes_with_its_stream_waiting)
    alive = asyncio.ensure_future(control.wait_resumed())
    await asyncio.sleep(0)  # the waiter registers
    control.resume()  # does not raise for the closed loop
    await asyncio.wait_for(alive, 1)


async def test_held_events_are_delivered_on_the_streams_loop_not_the_resuming_thread(gated: Any) -> None:
    server = await gated()
    control = PauseControl(paused=True)
    recorder = Recorder()
    async with OpenAIChat("gpt-4o-mini", base_url=server.base_url) as provider:
        provider.stream(REQUEST, pause=control).subscribe(recorder)
        server.release.set()
        await asyncio.to_thread(server.first_sent.wait, 5)
        resumer = threading.Thread(target=control.resume)
        resumer.start()
        await recorder.wait(5)
        resumer.join(5)
    assert (recorder.errors, recorder.completions, recorder.text) == ([], 1, "".join(WORDS))
    assert recorder.threads == {threading.get_ident()}


# -- 7. the connect phase is bounded ------------------------------------------------------------------


async def test_the_connect_timeout_bounds_name_resolution_stuck_behind_a_busy_executor(gated: Any) -> None:
    server = await gated()
    server.release.set()
    loop = asyncio.get_running_loop()
    unblock = threading.Event()
    # Every thread of the default executor, where aiohttp resolves names, is busy.
    busy = [loop.run_in_executor(None, unblock.wait) for _ in range(64)]
    try:
        base_url = server.base_url.replace("127.0.0.1", "localhost")
        provider = OpenAIChat(
            "gpt-4o-mini",
            base_url=base_url,
            max_retries=0,
            timeouts=Timeouts(connect=0.3, first_event=30),
        )
        async with provider:
            result = await collect(provider.stream(REQUEST))
    finally:
        unblock.set()
        await asyncio.gather(*busy)
    (error,) = result.errors
    assert type(error) is StreamTimeoutError
    assert error.which == "connect"
    assert server.requests == 0


async def test_sync_tools_that_time_out_leave_the_default_executor_free(gated: Any) -> None:
    server = await gated()
    server.release.set()
    unblock = threading.Event()

    @rxllm.tool(timeout=0.05)
    def hang() -> str:
        """Never returns in time."""
        unblock.wait()
        return "late"

    calls = [(f"call_{n}", "hang", "{}") for n in range(40)]
    server.replies = [tool_turn(*calls), text_turn("done")]
    try:
        base_url = server.base_url.replace("127.0.0.1", "localhost")  # the next request resolves a name
        async with OpenAIChat("gpt-4o-mini", base_url=base_url, timeouts=Timeouts(connect=5)) as provider:
            agent = rxllm.Agent(provider, tools=[hang], tool_concurrency=40)
            result = await asyncio.wait_for(collect(agent.stream_prompt("go")), 30)
    finally:
        unblock.set()
    assert result.errors == []
    results = [item for item in result.items if isinstance(item, rxllm.ToolResult)]
    assert len(results) == 40 and all(r.is_error and "timed out" in r.content for r in results)
    assert result.items[-1].text == "done"


async def test_pausing_from_another_thread_during_a_real_stream_loses_duplicates_and_reorders_nothing(
    gated: Any,
) -> None:
    words = [f"{n} " for n in range(3000)]
    server = await gated(replies=[text_turn(*words)])
    server.release.set()
    control = PauseControl()
    recorder = Recorder()
    stop = threading.Event()
    flips = [0]

    def toggle() -> None:
        while not stop.is_set():
            control.pause()
            control.resume()
            flips[0] += 1

    toggler = threading.Thread(target=toggle)
    async with OpenAIChat("gpt-4o-mini", base_url=server.base_url) as provider:
        provider.stream(REQUEST, pause=control).subscribe(recorder)
        toggler.start()
        try:
            await recorder.wait(60)
        finally:
            stop.set()
            toggler.join(10)
    assert flips[0] > 0
    assert (recorder.errors, recorder.completions) == ([], 1)
    texts = [item.text for item in recorder.items if isinstance(item, TextDelta)]
    assert texts == words
    assert type(recorder.items[-1]).__name__ == "Final"
    assert recorder.threads == {threading.get_ident()}  # every event on the stream's loop


async def test_an_observer_raising_on_a_held_event_released_by_resume_ends_the_stream_loud(
    gated: Any,
) -> None:
    server = await gated(hold_after_first=True, replies=[text_turn(*WORDS)[1:]])
    control = PauseControl(paused=True)
    boom = ValueError("view gone")

    class Raising(Recorder):
        def on_next(self, value: Any) -> None:
            raise boom

    recorder = Raising()
    async with OpenAIChat("gpt-4o-mini", base_url=server.base_url) as provider:
        provider.stream(REQUEST, pause=control).subscribe(recorder)
        server.release.set()
        await asyncio.to_thread(server.first_sent.wait, 5)
        await asyncio.to_thread(control.resume)  # from another thread: resume itself never raises
        await recorder.wait(5)
        await asyncio.wait_for(server.left.wait(), 5)  # the connection was closed
    (error,) = recorder.errors
    assert type(error) is CallbackError and error.__cause__ is boom
    assert recorder.completions == 0
