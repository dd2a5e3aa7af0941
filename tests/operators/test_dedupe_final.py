from collections.abc import Iterator

import msgspec
import reactivex
from reactivex import Observable
from reactivex import operators as ops
from reactivex.notification import OnError
from reactivex.testing import ReactiveTest, TestScheduler
from reactivex.testing.marbles import marbles_testing

from rxllm.errors import ProviderError
from rxllm.events import AssistantEvent, Final, Retrying, StreamReset, TextDelta, ToolCall, Usage
from rxllm.operators import dedupe_final

on_next, on_completed, subscribe = ReactiveTest.on_next, ReactiveTest.on_completed, ReactiveTest.subscribe

a = TextDelta(text="Hi")
f = Final(finish_reason="stop", response_id="chatcmpl-1", model="gpt-x")
g = Final(usage=Usage(input_tokens=12, output_tokens=7, total_tokens=19))
values: dict[str | float, object] = {
    "a": a,
    "f": f,
    "g": g,
    "h": Final(
        usage=Usage(input_tokens=12, output_tokens=7, total_tokens=19),
        finish_reason="stop",
        response_id="chatcmpl-1",
        model="gpt-x",
    ),
    "z": Final(usage_complete=False),
}


def test_one_merged_final_just_before_completion() -> None:
    with marbles_testing() as (start, cold, _hot, exp):
        source = cold("-a-f-g-|", values, None)
        assert start(source.pipe(dedupe_final())) == exp("-a-----(h,|)", values, None)


def test_a_single_final_is_delivered_as_it_is_at_completion() -> None:
    with marbles_testing() as (start, cold, _hot, exp):
        source = cold("-g-a-|", values, None)
        assert start(source.pipe(dedupe_final())) == exp("---a-(g,|)", values, None)


def test_a_turn_that_reported_no_usage_has_none_and_is_not_complete() -> None:
    # The server reported no usage: unknown, which the Final says, never zeros.
    local: dict[str | float, object] = {**values, "n": Final(finish_reason="stop", usage_complete=False)}
    with marbles_testing() as (start, cold, _hot, exp):
        source = cold("-a-s-|", {**local, "s": Final(finish_reason="stop")}, None)
        assert start(source.pipe(dedupe_final())) == exp("-a---(n,|)", local, None)


def test_usage_repeated_and_finish_reason_split_merge_without_double_counting() -> None:
    usage = Usage(input_tokens=5, output_tokens=3, total_tokens=8)
    local: dict[str | float, object] = {
        "u": Final(usage=usage),
        "s": Final(finish_reason="length"),
        "n": Final(finish_reason=None, model="m-2"),
        "h": Final(usage=usage, finish_reason="length", model="m-2"),
    }
    with marbles_testing() as (start, cold, _hot, exp):
        source = cold("-u-s-u-n-|", local, None)
        assert start(source.pipe(dedupe_final())) == exp("---------(h,|)", local, None)


def test_no_final_at_all_gives_a_zero_final() -> None:
    with marbles_testing() as (start, cold, _hot, exp):
        source = cold("-a-|", values, None)
        assert start(source.pipe(dedupe_final())) == exp("-a-(z,|)", values, None)


def test_empty_turn_gives_only_a_zero_final() -> None:
    with marbles_testing() as (start, cold, _hot, exp):
        assert start(cold("--|", values, None).pipe(dedupe_final())) == exp("--(z,|)", values, None)


def test_error_drops_the_held_final() -> None:
    error = ProviderError("Overloaded", type="overloaded_error")
    with marbles_testing() as (start, cold, _hot, exp):
        results = start(cold("-a-f-#", values, error).pipe(dedupe_final()))
        assert results == exp("-a---#", values, error)
    assert isinstance(results[-1].value, OnError)
    assert results[-1].value.exception is error


def test_stream_reset_passes_through_and_the_held_final_stays() -> None:
    # The discarded attempt sent f (no usage): its fields stay as defaults, and it reported no usage.
    reset = StreamReset(attempt=1, reason="connection reset")
    h = values["h"]
    assert isinstance(h, Final)
    local: dict[str | float, object] = {
        **values,
        "r": reset,
        "k": msgspec.structs.replace(h, usage_complete=False),
    }
    with marbles_testing() as (start, cold, _hot, exp):
        source = cold("-f-r-a-g-|", local, None)
        assert start(source.pipe(dedupe_final())) == exp("---r-a---(k,|)", local, None)


def test_a_discarded_attempt_without_usage_makes_the_final_incomplete() -> None:
    reset = StreamReset(attempt=2, reason="connection lost mid-stream")
    local: dict[str | float, object] = {
        **values,
        "r": reset,
        "k": Final(usage=g.usage, usage_complete=False),
    }
    with marbles_testing() as (start, cold, _hot, exp):
        source = cold("-a-r-a-g-|", local, None)
        assert start(source.pipe(dedupe_final())) == exp("-a-r-a---(k,|)", local, None)


def test_other_events_keep_their_order() -> None:
    tool_call = ToolCall(id="c1", call_id="c1", internal_call_id="rx_1", name="ping")
    retrying = Retrying(attempt=2, delay=0.5, reason="HTTP 503", status=503)
    local: dict[str | float, object] = {**values, "t": tool_call, "w": retrying}
    with marbles_testing() as (start, cold, _hot, exp):
        source = cold("-w-a-t-g-a-|", local, None)
        assert start(source.pipe(dedupe_final())) == exp("-w-a-t---a-(g,|)", local, None)


def test_dispose_unsubscribes_the_source() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_hot_observable(on_next(210, a), on_next(220, f), on_completed(400))
    results = scheduler.start(lambda: xs.pipe(dedupe_final()), disposed=300)
    assert results.messages == [on_next(210, a)]
    assert xs.subscriptions == [subscribe(200, 300)]


def test_resubscribing_starts_clean() -> None:
    error = ProviderError("Overloaded", type="overloaded_error")
    with marbles_testing() as (start, cold, _hot, _exp):
        attempts: Iterator[Observable[AssistantEvent]] = iter(
            [cold("-f-#", values, error), cold("-a-g-|", values, None)]
        )
        source: Observable[AssistantEvent] = reactivex.defer(lambda _: next(attempts))
        # The first attempt fails holding f; a resubscription must not merge it into its final.
        results = start(source.pipe(dedupe_final(), ops.retry(2)))
    assert results == [on_next(204, a), on_next(208, g), on_completed(208)]


def test_a_discarded_attempts_usage_is_added_to_the_final() -> None:
    # f1: the discarded attempt's finish and usage; g2: the new attempt's. One Final, both usages.
    reset = StreamReset(attempt=2, reason="connection lost mid-stream")
    f1 = Final(usage=Usage(input_tokens=12, output_tokens=3, total_tokens=15), finish_reason="stop")
    g2 = Final(usage=Usage(input_tokens=12, output_tokens=7, total_tokens=19), finish_reason="length")
    both = Final(usage=Usage(input_tokens=24, output_tokens=10, total_tokens=34), finish_reason="length")
    local: dict[str | float, object] = {**values, "r": reset, "p": f1, "q": g2, "s": both}
    with marbles_testing() as (start, cold, _hot, exp):
        source = cold("-a-p-r-a-q-|", local, None)
        assert start(source.pipe(dedupe_final())) == exp("-a---r-a---(s,|)", local, None)


def test_every_discarded_attempt_counts_once() -> None:
    reset = StreamReset(attempt=2, reason="idle timeout")
    one = Final(usage=Usage(input_tokens=5, total_tokens=5))
    local: dict[str | float, object] = {
        **values,
        "r": reset,
        "o": one,
        "s": Final(usage=Usage(input_tokens=15, total_tokens=15), finish_reason="stop"),
        "i": Final(usage=Usage(input_tokens=15, total_tokens=15), finish_reason="stop", usage_complete=False),
        "t": Final(finish_reason="stop", usage=Usage(input_tokens=5, total_tokens=5)),
    }
    with marbles_testing() as (start, cold, _hot, exp):
        # Usage repeated within an attempt is merged, not added; each reset adds what was held.
        source = cold("-o-o-r-o-r-o-t-|", local, None)
        assert start(source.pipe(dedupe_final())) == exp("-----r---r-----(s,|)", local, None)
    with marbles_testing() as (start, cold, _hot, exp):
        # The third attempt reported nothing before its reset: the sum leaves it out, and says so.
        source = cold("-o-o-r-o-r-r-t-|", local, None)
        assert start(source.pipe(dedupe_final())) == exp("-----r---r-r---(i,|)", local, None)


def test_a_reset_then_an_error_delivers_no_final() -> None:
    reset = StreamReset(attempt=2, reason="malformed chunk")
    error = ProviderError("Overloaded", type="overloaded_error")
    local: dict[str | float, object] = {**values, "r": reset}
    with marbles_testing() as (start, cold, _hot, exp):
        results = start(cold("-f-r-a-g-#", local, error).pipe(dedupe_final()))
        assert results == exp("---r-a---#", local, error)
