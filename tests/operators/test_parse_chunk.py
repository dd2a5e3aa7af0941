"""``parse_chunk`` on its own (with a tiny dialect defined here), then with the OpenAI Chat dialect."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import reactivex
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.testing import ReactiveTest, TestScheduler
from reactivex.testing.marbles import marbles_testing
from reactivex.testing.recorded import Recorded

from rxllm.errors import ChunkDecodeError, InternalServerError, ProviderError, StreamTruncatedError
from rxllm.events import ChunkEvent, Final, TextDelta, ToolCallFragment, Usage
from rxllm.operators import parse_chunk
from rxllm.providers._openai_chat import OpenAIChatDialect
from rxllm.sse import SseEvent

on_next, on_completed, on_error = ReactiveTest.on_next, ReactiveTest.on_completed, ReactiveTest.on_error
subscribe = ReactiveTest.subscribe


class CountingParser:
    """Numbers each text it emits (``a`` -> ``a1``), so a reused parser shows in the output.

    Data ``fin`` finishes the turn, ``end`` is the end marker, ``bad`` is undecodable,
    ``boom`` is a bug in the parser; the event name ``pair`` gives two events.
    """

    def __init__(self) -> None:
        self.done = False
        self.finished = False
        self.count = 0
        self.fed: list[str] = []

    def feed(self, event: str, data: str) -> Sequence[ChunkEvent]:
        self.fed.append(data)
        if data == "bad":
            raise ChunkDecodeError("not a word", data)
        if data == "boom":
            raise ValueError("a bug")
        if data == "end":
            self.done = self.finished = True
            return ()
        if data == "fin":
            self.finished = True
            return [Final(finish_reason="stop")]
        self.count += 1
        if event == "pair":
            return [TextDelta(text=f"{data}{self.count}"), TextDelta(text=f"{data}{self.count}+")]
        return [TextDelta(text=f"{data}{self.count}")]


class CountingDialect:
    name = "counting"
    end_of_turn = "its end marker"

    def __init__(self) -> None:
        self.parsers: list[CountingParser] = []

    def parser(self) -> CountingParser:
        self.parsers.append(CountingParser())
        return self.parsers[-1]


sse: dict[str | float, Any] = {
    "a": SseEvent(data="a"),
    "b": SseEvent(data="b"),
    "p": SseEvent(data="p", event="pair"),
    "f": SseEvent(data="fin"),
    "D": SseEvent(data="end"),
    "x": SseEvent(data="bad"),
    "y": SseEvent(data="boom"),
}
out: dict[str | float, object] = {
    "a": TextDelta(text="a1"),
    "b": TextDelta(text="b2"),
    "c": TextDelta(text="b1"),
    "p": TextDelta(text="p2"),
    "q": TextDelta(text="p2+"),
    "f": Final(finish_reason="stop"),
}
truncated = StreamTruncatedError("the counting stream ended before its end marker")
reset = ConnectionResetError("peer closed")


def error_of(messages: list[Recorded[Any]]) -> Exception:
    notification: Any = messages[-1].value
    assert notification.kind == "E"
    error: Exception = notification.exception
    return error


def test_events_pass_through_in_order() -> None:
    with marbles_testing() as (start, cold, _hot, exp):
        source = cold("-a-p-----f-|", sse, None)
        assert start(source.pipe(parse_chunk(CountingDialect()))) == exp("-a-(p,q)-f-|", out, None)


def test_end_marker_completes_and_unsubscribes_at_that_moment() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_hot_observable(
        on_next(210, sse["a"]),
        on_next(220, sse["D"]),
        on_next(230, sse["b"]),
        on_completed(240),
    )
    results = scheduler.start(lambda: xs.pipe(parse_chunk(CountingDialect())))
    assert results.messages == [on_next(210, out["a"]), on_completed(220)]
    assert xs.subscriptions == [subscribe(200, 220)]


def test_end_marker_completes_while_the_server_keeps_the_connection_open() -> None:
    with marbles_testing() as (start, cold, _hot, exp):
        source = cold("-a-D-------", sse, None)
        assert start(source.pipe(parse_chunk(CountingDialect()))) == exp("-a-|", out, None)


def test_the_source_is_unsubscribed_before_observers_hear_the_end() -> None:
    # A slow completion or error handler downstream must not hold the connection open.
    scheduler = TestScheduler()
    xs = scheduler.create_hot_observable(on_next(210, sse["D"]), on_next(220, sse["x"]))
    ys = scheduler.create_hot_observable(on_next(220, sse["x"]))
    unsubscribed_at: list[float] = []

    def note(subscriptions: list[Any]) -> None:
        unsubscribed_at.append(subscriptions[0].unsubscribe)

    xs.pipe(parse_chunk(CountingDialect())).subscribe(
        on_completed=lambda: note(xs.subscriptions), scheduler=scheduler
    )
    ys.pipe(parse_chunk(CountingDialect())).subscribe(
        on_error=lambda _: note(ys.subscriptions), scheduler=scheduler
    )
    scheduler.start()
    assert unsubscribed_at == [210, 220]


def test_source_completes_when_finished() -> None:
    with marbles_testing() as (start, cold, _hot, exp):
        source = cold("-a-f-b-|", sse, None)
        # Content after the finish reason still passes; the completion is clean.
        assert start(source.pipe(parse_chunk(CountingDialect()))) == exp("-a-f-b-|", out, None)


def test_source_completes_before_the_turn_is_whole() -> None:
    with marbles_testing() as (start, cold, _hot, exp):
        source = cold("-a-b-|", sse, None)
        results = start(source.pipe(parse_chunk(CountingDialect())))
        assert results == exp("-a-b-#", out, truncated)
    assert type(error_of(results)) is StreamTruncatedError


def test_source_completes_with_nothing_at_all() -> None:
    with marbles_testing() as (start, cold, _hot, exp):
        results = start(cold("--|", sse, None).pipe(parse_chunk(CountingDialect())))
        assert results == exp("--#", out, truncated)
    assert type(error_of(results)) is StreamTruncatedError


def test_feed_raising_chunk_decode_error_errors_and_unsubscribes() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_hot_observable(
        on_next(210, sse["a"]),
        on_next(220, sse["x"]),
        on_next(230, sse["b"]),
        on_completed(240),
    )
    results = scheduler.start(lambda: xs.pipe(parse_chunk(CountingDialect())))
    assert results.messages == [on_next(210, out["a"]), on_error(220, ChunkDecodeError("not a word", "bad"))]
    error = error_of(results.messages)
    assert type(error) is ChunkDecodeError
    assert (error.reason, error.data) == ("not a word", "bad")
    assert xs.subscriptions == [subscribe(200, 220)]


def test_feed_raising_a_bug_errors_and_unsubscribes() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_hot_observable(on_next(210, sse["y"]), on_next(220, sse["a"]))
    results = scheduler.start(lambda: xs.pipe(parse_chunk(CountingDialect())))
    assert results.messages == [on_error(210, ValueError("a bug"))]
    assert type(error_of(results.messages)) is ValueError
    assert xs.subscriptions == [subscribe(200, 210)]


def test_source_error_passes_through() -> None:
    with marbles_testing() as (start, cold, _hot, exp):
        source = cold("-a-f-#", sse, reset)
        results = start(source.pipe(parse_chunk(CountingDialect())))
        assert results == exp("-a-f-#", out, reset)
    assert error_of(results) is reset


def test_dispose_unsubscribes_the_source() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_hot_observable(on_next(210, sse["a"]), on_next(310, sse["b"]))
    results = scheduler.start(lambda: xs.pipe(parse_chunk(CountingDialect())), disposed=300)
    assert results.messages == [on_next(210, out["a"])]
    assert xs.subscriptions == [subscribe(200, 300)]


def test_resubscribe_starts_with_a_fresh_parser() -> None:
    dialect = CountingDialect()
    with marbles_testing() as (start, cold, _hot, exp):
        source = cold("-a-b-f|", sse, None)
        # A shared parser would number the second round a3, b4.
        results = start(source.pipe(parse_chunk(dialect), ops.repeat(2)))
        assert results == exp("-a-b-f-a-b-f|", out, None)
    assert [parser.fed for parser in dialect.parsers] == [["a", "b", "fin"], ["a", "b", "fin"]]


def emitting_after_terminal(*items: SseEvent) -> Observable[SseEvent]:
    """A source that ignores disposal: it emits everything synchronously, then completes and errors."""

    def subscribe_(observer: abc.ObserverBase[SseEvent], _scheduler: abc.SchedulerBase | None = None) -> Any:
        for item in items:
            observer.on_next(item)
        observer.on_completed()
        observer.on_error(reset)

    return reactivex.create(subscribe_)


def record(source: Observable[SseEvent]) -> tuple[list[ChunkEvent | Exception | str], list[str]]:
    """Everything the observer gets (events, errors, ``"completed"``), and what the parser was fed."""
    seen: list[ChunkEvent | Exception | str] = []
    dialect = CountingDialect()
    source.pipe(parse_chunk(dialect)).subscribe(seen.append, seen.append, lambda: seen.append("completed"))
    return seen, dialect.parsers[0].fed


def test_nothing_after_the_end_marker_from_a_synchronous_source() -> None:
    a, end, b = SseEvent(data="a"), SseEvent(data="end"), SseEvent(data="b")
    seen, fed = record(emitting_after_terminal(a, end, b))
    assert seen == [TextDelta(text="a1"), "completed"]
    assert fed == ["a", "end"]


def test_nothing_after_a_decode_error_from_a_synchronous_source() -> None:
    a, bad, b = SseEvent(data="a"), SseEvent(data="bad"), SseEvent(data="b")
    seen, fed = record(emitting_after_terminal(a, bad, b, SseEvent(data="end")))
    assert fed == ["a", "bad"]
    assert len(seen) == 2
    assert seen[0] == TextDelta(text="a1")
    assert type(seen[1]) is ChunkDecodeError
    assert str(seen[1]) == "undecodable chunk (not a word): 'bad'"


def test_nothing_after_truncation_from_a_synchronous_source() -> None:
    seen, fed = record(emitting_after_terminal(SseEvent(data="a")))
    assert fed == ["a"]
    assert len(seen) == 2
    assert seen[0] == TextDelta(text="a1")
    assert type(seen[1]) is StreamTruncatedError
    assert str(seen[1]) == "the counting stream ended before its end marker"


# The OpenAI Chat dialect end to end, from server-sent events.

HEAD = '"id":"chatcmpl-1","object":"chat.completion.chunk","created":1741570283,"model":"gpt-4o-mini"'


def chunk(body: str) -> SseEvent:
    return SseEvent(data="{" + HEAD + "," + body + "}")


openai: dict[str | float, Any] = {
    "a": chunk('"choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"},"finish_reason":null}]'),
    "b": chunk('"choices":[{"index":0,"delta":{"content":"lo"},"logprobs":null,"finish_reason":null}]'),
    "c": chunk('"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null'),
    "k": chunk(
        '"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function",'
        '"function":{"name":"add","arguments":"{}"}}]},"finish_reason":"tool_calls"}]'
    ),
    "u": chunk('"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}'),
    "e": SseEvent(data='{"error":{"message":"Overloaded","type":"server_error","code":"overloaded"}}'),
    "m": SseEvent(data='{"choices":[{"index":0,"delta":{"content":"unterminated'),
    "D": SseEvent(data="[DONE]"),
}
openai_out: dict[str | float, object] = {
    "a": TextDelta(text="Hel"),
    "b": TextDelta(text="lo"),
    "c": Final(finish_reason="stop", response_id="chatcmpl-1", model="gpt-4o-mini"),
    "k": ToolCallFragment(index=0, id="call_1", name="add", arguments="{}"),
    "l": Final(finish_reason="tool_calls", response_id="chatcmpl-1", model="gpt-4o-mini"),
    "u": Final(
        usage=Usage(input_tokens=5, output_tokens=2, total_tokens=7),
        response_id="chatcmpl-1",
        model="gpt-4o-mini",
    ),
}


def test_openai_chat_stream_to_done() -> None:
    with marbles_testing() as (start, cold, _hot, exp):
        source = cold("-a-b-c-u-D-a-|", openai, None)
        assert start(source.pipe(parse_chunk(OpenAIChatDialect()))) == exp("-a-b-c-u-|", openai_out, None)


def test_openai_chat_done_unsubscribes_the_source() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_hot_observable(on_next(210, openai["a"]), on_next(220, openai["D"]))
    results = scheduler.start(lambda: xs.pipe(parse_chunk(OpenAIChatDialect())))
    assert results.messages == [on_next(210, openai_out["a"]), on_completed(220)]
    assert xs.subscriptions == [subscribe(200, 220)]


def test_openai_chat_tool_call_and_finish_reason_without_done() -> None:
    with marbles_testing() as (start, cold, _hot, exp):
        source = cold("-k-----u-|", openai, None)
        assert start(source.pipe(parse_chunk(OpenAIChatDialect()))) == exp("-(k,l)-u-|", openai_out, None)


def test_openai_chat_eof_before_done_or_a_finish_reason() -> None:
    error = StreamTruncatedError(
        "the openai-chat stream ended before [DONE] (or a finish reason and its usage)"
    )
    with marbles_testing() as (start, cold, _hot, exp):
        results = start(cold("-a-b-|", openai, None).pipe(parse_chunk(OpenAIChatDialect())))
        assert results == exp("-a-b-#", openai_out, error)
    assert type(error_of(results)) is StreamTruncatedError


def test_openai_chat_eof_after_the_finish_reason_before_its_usage_is_a_truncation() -> None:
    # Cut right after the finish reason: the answer looks whole, but its usage (asked for) never came.
    error = StreamTruncatedError(
        "the openai-chat stream ended before [DONE] (or a finish reason and its usage)"
    )
    with marbles_testing() as (start, cold, _hot, exp):
        results = start(cold("-a-b-c-|", openai, None).pipe(parse_chunk(OpenAIChatDialect())))
        assert results == exp("-a-b-c-#", openai_out, error)
    assert type(error_of(results)) is StreamTruncatedError


def test_openai_chat_finish_reason_and_usage_without_done_is_whole() -> None:
    with marbles_testing() as (start, cold, _hot, exp):
        source = cold("-a-c-u-|", openai, None)
        assert start(source.pipe(parse_chunk(OpenAIChatDialect()))) == exp("-a-c-u-|", openai_out, None)


def test_openai_chat_without_the_end_marker_requirement_a_finish_reason_is_the_end() -> None:
    dialect = OpenAIChatDialect(require_end_marker=False)
    with marbles_testing() as (start, cold, _hot, exp):
        assert start(cold("-a-c-|", openai, None).pipe(parse_chunk(dialect))) == exp(
            "-a-c-|", openai_out, None
        )
    error = StreamTruncatedError("the openai-chat stream ended before [DONE] or a finish reason")
    with marbles_testing() as (start, cold, _hot, exp):
        assert start(cold("-a-b-|", openai, None).pipe(parse_chunk(dialect))) == exp(
            "-a-b-#", openai_out, error
        )


def test_openai_chat_in_band_error() -> None:
    error = ProviderError("Overloaded", type="server_error", code="overloaded")
    with marbles_testing() as (start, cold, _hot, exp):
        results = start(cold("-a-e-b-D|", openai, None).pipe(parse_chunk(OpenAIChatDialect())))
        assert results == exp("-a-#", openai_out, error)
    caught = error_of(results)
    assert type(caught) is InternalServerError  # type server_error: as the openai SDK names it
    assert (caught.message, caught.type, caught.code, caught.status) == (
        "Overloaded",
        "server_error",
        "overloaded",
        None,
    )


def test_openai_chat_malformed_chunk() -> None:
    data = '{"choices":[{"index":0,"delta":{"content":"unterminated'
    error = ChunkDecodeError("Input data was truncated", data)
    with marbles_testing() as (start, cold, _hot, exp):
        results = start(cold("-a-m-b-D|", openai, None).pipe(parse_chunk(OpenAIChatDialect())))
        assert results == exp("-a-#", openai_out, error)
    assert type(error_of(results)) is ChunkDecodeError
