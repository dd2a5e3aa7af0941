"""rxllm.aiter and rxllm.run: Observables as async iterators and as blocking calls."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any, cast

import pytest
import reactivex
from reactivex.subject import Subject

import rxllm
from rxllm import (
    CompletionRequest,
    Final,
    FinalResponse,
    Message,
    ProviderError,
    TextDelta,
    ToolResult,
    Usage,
)
from rxllm.testing import Call, ReceivedRequest, Reply, ScriptedModel, ScriptedServer, Turn, sse_bytes

REQUEST = CompletionRequest([Message.user("Hi")])
FINAL = Final(usage=Usage(input_tokens=10, output_tokens=5, total_tokens=15), finish_reason="stop")


async def test_aiter_yields_every_item_in_order() -> None:
    model = ScriptedModel([[TextDelta(text="a"), TextDelta(text="b"), FINAL]])
    assert [event async for event in rxllm.aiter(model.stream(REQUEST))] == [
        TextDelta(text="a"),
        TextDelta(text="b"),
        FINAL,
    ]


async def test_aiter_raises_the_error_after_the_items_before_it() -> None:
    boom = ProviderError("Overloaded", status=529)
    seen: list[Any] = []
    with pytest.raises(ProviderError) as raised:
        async for item in rxllm.aiter(reactivex.concat(reactivex.of(1, 2), reactivex.throw(boom))):
            seen.append(item)
    assert seen == [1, 2]
    assert raised.value is boom


async def test_aiter_subscribes_only_when_iteration_starts() -> None:
    subscribed: list[int] = []

    def factory(_: Any) -> reactivex.Observable[str]:
        subscribed.append(1)
        return reactivex.of("x")

    source = reactivex.defer(factory)
    iterator = rxllm.aiter(source)
    await asyncio.sleep(0)
    assert subscribed == []
    assert [item async for item in iterator] == ["x"]
    assert subscribed == [1]


async def test_aiter_takes_items_from_other_threads() -> None:
    subject: Subject[int] = Subject()

    def produce() -> None:
        for number in range(100):
            subject.on_next(number)
        subject.on_completed()

    # Started once the iteration has subscribed (the first step of the loop below).
    asyncio.get_running_loop().call_soon(lambda: threading.Thread(target=produce).start())
    assert [item async for item in rxllm.aiter(subject)] == list(range(100))


async def test_leaving_the_loop_early_closes_the_connection() -> None:
    slow = Reply(Turn(text=["tick "] * 200), delay=0.02)
    async with ScriptedServer([slow]) as server, server.provider() as provider:
        count = 0
        async for event in rxllm.aiter(provider.stream(REQUEST)):
            assert event == TextDelta(text="tick ")
            count += 1
            if count == 2:
                break
        assert await asyncio.to_thread(server.disconnected.wait, 2)


async def test_closing_the_iterator_disposes_at_once() -> None:
    disposed: list[bool] = []
    source = reactivex.never().pipe(reactivex.operators.finally_action(lambda: disposed.append(True)))
    async with contextlib.aclosing(rxllm.aiter(reactivex.concat(reactivex.of(1), source))) as items:
        async for _ in items:
            break
    assert disposed == [True]


async def test_a_cancelled_consumer_disposes_the_subscription() -> None:
    disposed = asyncio.Event()
    subscribed = asyncio.Event()

    def start(_scheduler: Any) -> reactivex.Observable[Any]:
        subscribed.set()
        return reactivex.never()

    source = reactivex.defer(start).pipe(reactivex.operators.finally_action(disposed.set))

    async def consume() -> None:
        async for _ in rxllm.aiter(source):
            pass

    task = asyncio.create_task(consume())
    await asyncio.wait_for(subscribed.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert disposed.is_set()


def test_run_blocks_and_returns_the_events() -> None:
    model = ScriptedModel([Turn(text=["Hello ", "world."])])
    events = rxllm.run(model.stream(REQUEST))
    assert events == [
        TextDelta(text="Hello "),
        TextDelta(text="world."),
        Final(
            usage=Usage(input_tokens=10, output_tokens=5, total_tokens=15),
            finish_reason="stop",
            response_id="chatcmpl-scripted",
            model="scripted-model",
        ),
    ]


def test_run_raises_the_streams_own_error() -> None:
    boom = ValueError("boom")
    with pytest.raises(ValueError) as raised:
        rxllm.run(reactivex.throw(boom))
    assert raised.value is boom


def test_run_gives_a_loop_to_streams_that_need_one() -> None:
    # Tools run as asyncio tasks (from_coroutine), which need a running loop; run() provides it.
    @rxllm.tool
    async def shout(text: str) -> str:
        """Upper-case the text."""
        await asyncio.sleep(0)
        return text.upper()

    model = ScriptedModel([Turn(calls=[Call("shout", {"text": "hi"})]), Turn(text=["HI"])])
    events = rxllm.run(rxllm.Agent(model, tools=[shout]).stream_prompt("Shout hi."))
    assert [event.content for event in events if isinstance(event, ToolResult)] == ["HI"]
    assert isinstance(events[-1], FinalResponse) and events[-1].text == "HI"


def test_run_timeout_disposes_and_raises() -> None:
    disposed: list[bool] = []
    source = reactivex.never().pipe(reactivex.operators.finally_action(lambda: disposed.append(True)))
    with pytest.raises(TimeoutError):
        rxllm.run(source, timeout=0.05)
    assert disposed == [True]


async def test_run_inside_a_running_loop_uses_a_worker_thread() -> None:
    model = ScriptedModel([Turn(text=["Hi"])])
    events = rxllm.run(model.stream(REQUEST))
    assert events[0] == TextDelta(text="Hi")
    with pytest.raises(ValueError, match="inner"):
        rxllm.run(reactivex.throw(ValueError("inner")))


def test_a_plain_script_using_a_providers_own_session_exits_cleanly() -> None:
    # rxllm.run makes a loop and closes it; the provider's own session must close with it,
    # without "Unclosed client session" or "Unclosed connector" at exit.
    import subprocess
    import sys
    import textwrap

    with ScriptedServer([Turn(text=["Hello"]), Turn(text=["again"])]) as server:
        script = textwrap.dedent(
            f"""
            import rxllm
            from rxllm import CompletionRequest, Message, TextDelta
            from rxllm.providers.openai import OpenAIChat

            model = OpenAIChat("scripted", base_url={server.base_url!r})
            request = CompletionRequest([Message.user("Hi")])
            for _ in range(2):  # two loops, one after the other
                events = rxllm.run(model.stream(request))
                print("".join(e.text for e in events if isinstance(e, TextDelta)))
            """
        )
        done = subprocess.run(
            [sys.executable, "-W", "error::ResourceWarning", "-X", "dev", "-c", script],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert (done.returncode, done.stdout, done.stderr) == (0, "Hello\nagain\n", "")


# -- iterate: a plain script's for loop ---------------------------------------------------------------


def test_iterate_yields_each_event_while_the_stream_is_still_running() -> None:
    # The server sends the rest only once the script has the first event in hand: if iterate
    # handed events over at the end, the script would never get it, and the stream would stall.
    first_taken = threading.Event()
    pieces = sse_bytes(Turn(text=["one ", "two"]))

    def gated() -> Iterator[bytes]:
        yield from pieces[:2]  # the role chunk and "one "
        assert first_taken.wait(10), "the script never got the first event while the stream ran"
        yield from pieces[2:]

    with ScriptedServer([Reply(cast(list[bytes], gated()))]) as server:
        seen: list[Any] = []
        for event in rxllm.iterate(server.provider().stream(REQUEST)):
            seen.append(event)
            if event == TextDelta(text="one "):
                first_taken.set()
    assert [type(event) for event in seen] == [TextDelta, TextDelta, Final]


def test_iterate_raises_the_streams_error_after_the_events_before_it() -> None:
    broken = Reply([b'data: {"choices":[{"index":0,"delta":{"content":"partial"}}]}\n\n'])
    with ScriptedServer([broken]) as server:
        seen: list[Any] = []
        with pytest.raises(rxllm.StreamTruncatedError):
            for event in rxllm.iterate(server.provider(max_retries=0).stream(REQUEST)):
                seen.append(event)
    assert seen == [TextDelta(text="partial")]


def test_leaving_iterate_early_closes_the_connection_and_ends_its_thread() -> None:
    slow = Reply(Turn(text=["tick "] * 500), delay=0.01)
    before = {thread.ident for thread in threading.enumerate()}
    with ScriptedServer([slow]) as server:
        for count, event in enumerate(rxllm.iterate(server.provider().stream(REQUEST)), 1):
            assert event == TextDelta(text="tick ")
            if count == 3:
                break
        assert server.disconnected.wait(5)
    assert not [t for t in threading.enumerate() if t.ident not in before and t.name == "rxllm-iterate"]


def test_iterate_without_a_loop_needs_none() -> None:
    assert list(rxllm.iterate(reactivex.of(1, 2, 3))) == [1, 2, 3]


def test_run_shows_the_streams_error_alone_in_its_traceback() -> None:
    boom = ProviderError("no", status=400)
    with pytest.raises(ProviderError) as caught:
        rxllm.run(reactivex.throw(boom))
    assert caught.value is boom
    assert caught.value.__context__ is None, "no 'During handling of the above exception' before it"


# -- Ctrl-C in a plain script -------------------------------------------------------------------------

CTRL_C_SCRIPT = """
import asyncio, sys
import rxllm
from rxllm import CompletionRequest, Message
from rxllm.providers.openai import OpenAIChat

stream = OpenAIChat("m", base_url=sys.argv[2]).stream(CompletionRequest([Message.user("Hi")]))
try:
    if sys.argv[1] == "iterate":
        for event in rxllm.iterate(stream):
            print("event", flush=True)
    elif sys.argv[1] == "run":
        rxllm.run(stream)
    else:  # run where a loop already runs in this thread, as in a notebook cell
        async def cell() -> None:
            rxllm.run(stream)

        asyncio.new_event_loop().run_until_complete(cell())
finally:
    sys.stdin.readline()  # alive until the test has looked at the server: exiting would close it too
"""


def _default_sigint() -> None:
    # A suite run as a background job inherits SIGINT ignored; a terminal gives the default.
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.mark.parametrize("bridge", ["iterate", "run", "run-in-a-loop"])
def test_ctrl_c_in_a_plain_script_closes_the_connection_and_shows_only_keyboard_interrupt(
    bridge: str,
) -> None:
    arrived = threading.Event()

    def slow(_: ReceivedRequest) -> Reply:
        arrived.set()
        return Reply(Turn(text=["tick "] * 1000), delay=0.01)

    with ScriptedServer([slow]) as server:
        child = subprocess.Popen(
            [sys.executable, "-c", CTRL_C_SCRIPT, bridge, server.base_url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=_default_sigint,
        )
        assert child.stdout is not None
        assert arrived.wait(30), "the script never sent its request"
        if bridge == "iterate":
            assert child.stdout.readline() == "event\n"  # events are streaming into the loop
        child.send_signal(signal.SIGINT)
        assert server.disconnected.wait(10), "the connection stayed open after Ctrl-C"
        assert child.poll() is None  # still running: the script closed it, not its exit
        _, stderr = child.communicate("\n", timeout=30)
    assert child.returncode == -signal.SIGINT
    # One traceback, ending in KeyboardInterrupt alone: no CancelledError, no "no running event loop".
    assert stderr.count("Traceback (most recent call last)") == 1, stderr
    assert "During handling" not in stderr and "CancelledError" not in stderr, stderr
    assert stderr.endswith("\nKeyboardInterrupt\n"), stderr
