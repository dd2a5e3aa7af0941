import re
from typing import Any

import msgspec
import reactivex
from reactivex import operators as ops
from reactivex.notification import OnError, OnNext
from reactivex.testing import ReactiveTest, TestScheduler
from reactivex.testing.marbles import marbles_testing
from reactivex.testing.recorded import Recorded

from rxllm.errors import StreamTruncatedError
from rxllm.events import (
    Final,
    ReasoningDelta,
    Retrying,
    StreamReset,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolCallFragment,
)
from rxllm.operators import accumulate_tool_calls

on_next, on_completed, subscribe = ReactiveTest.on_next, ReactiveTest.on_completed, ReactiveTest.subscribe

_MINTED = re.compile(r"(rx|call)_[0-9a-f]{32}")


def normalized(records: list[Recorded[Any]]) -> list[Recorded[Any]]:
    """Minted ids (``rx_<hex>``, ``call_<hex>``) renamed ``rx_1``, ``call_1``... in order of appearance."""
    names: dict[str, str] = {}

    def rename(value: str) -> str:
        if not _MINTED.fullmatch(value):
            return value
        if value not in names:
            prefix = value.split("_")[0]
            names[value] = f"{prefix}_{sum(1 for n in names.values() if n.startswith(prefix + '_')) + 1}"
        return names[value]

    out: list[Recorded[Any]] = []
    for record in records:
        notification = record.value
        if isinstance(notification, OnNext) and isinstance(notification.value, ToolCallDelta | ToolCall):
            event = notification.value
            changes = {"id": rename(event.id), "internal_call_id": rename(event.internal_call_id)}
            if isinstance(event, ToolCall):
                changes["call_id"] = rename(event.call_id)
            out.append(on_next(record.time, msgspec.structs.replace(event, **changes)))
        else:
            out.append(record)
    return out


def run(source_marbles: str, values: dict[str | float, object], error: Exception | None = None) -> Any:
    """Run the operator over a cold source; the minted ids normalized."""
    with marbles_testing() as (start, cold, _hot, _exp):
        return normalized(start(cold(source_marbles, values, error).pipe(accumulate_tool_calls())))


def expected(marbles: str, values: dict[str | float, object], error: Exception | None = None) -> Any:
    with marbles_testing() as (_start, _cold, _hot, exp):
        return exp(marbles, values, error)


def frag(
    index: int | None, id: str | None = None, name: str | None = None, args: str = ""
) -> ToolCallFragment:
    return ToolCallFragment(index=index, id=id, name=name, arguments=args)


def delta(id: str, internal: str, args: str = "", name: str | None = None) -> ToolCallDelta:
    return ToolCallDelta(id=id, internal_call_id=internal, name=name, arguments_delta=args)


def call(id: str, internal: str, name: str, arguments: Any) -> ToolCall:
    return ToolCall(id=id, call_id=id, internal_call_id=internal, name=name, arguments=arguments)


stop = Final(finish_reason="tool_calls")


def test_fragments_join_into_one_call_just_before_the_final() -> None:
    values: dict[str | float, object] = {
        "t": TextDelta(text="Let me look."),
        "p": frag(0, "id_a", "get_weather", '{"city":'),
        "q": frag(0, args='"Paris"}'),
        "f": stop,
        "d": delta("id_a", "rx_1", '{"city":', name="get_weather"),
        "e": delta("id_a", "rx_1", '"Paris"}'),
        "c": call("id_a", "rx_1", "get_weather", {"city": "Paris"}),
    }
    assert run("-t-p-q-(f,|)", values) == expected("-t-d-e-(c,f,|)", values)


def test_other_events_pass_through_unchanged_and_in_order() -> None:
    upstream_call = call("id_z", "rx_upstream", "lookup", {"q": 1})
    values: dict[str | float, object] = {
        "t": TextDelta(text="a"),
        "r": ReasoningDelta(text="hmm", id="rs_1"),
        "u": upstream_call,
        "f": Final(finish_reason="stop"),
    }
    assert run("-t-r-u-(f,|)", values) == expected("-t-r-u-(f,|)", values)


def test_open_calls_complete_at_the_end_of_the_stream() -> None:
    values: dict[str | float, object] = {
        "p": frag(0, "id_a", "ping", "{}"),
        "d": delta("id_a", "rx_1", "{}", name="ping"),
        "c": call("id_a", "rx_1", "ping", {}),
    }
    assert run("-p-|", values) == expected("-d-(c,|)", values)


def test_a_final_without_finish_reason_completes_nothing() -> None:
    usage_only = Final(response_id="resp_1")
    values: dict[str | float, object] = {
        "p": frag(0, "id_a", "ping", '{"n":'),
        "u": usage_only,
        "q": frag(0, args="1}"),
        "f": stop,
        "d": delta("id_a", "rx_1", '{"n":', name="ping"),
        "e": delta("id_a", "rx_1", "1}"),
        "c": call("id_a", "rx_1", "ping", {"n": 1}),
    }
    assert run("-p-u-q-(f,|)", values) == expected("-d-u-e-(c,f,|)", values)


def test_parallel_calls_on_indexes_0_and_1_interleaved() -> None:
    values: dict[str | float, object] = {
        "a": frag(0, "id_a", "weather", '{"city":'),
        "b": frag(1, "id_b", "time", '{"tz":'),
        "x": frag(0, args='"Oslo"}'),
        "y": frag(1, args='"CET"}'),
        "f": stop,
        "D": delta("id_a", "rx_1", '{"city":', name="weather"),
        "E": delta("id_b", "rx_2", '{"tz":', name="time"),
        "G": delta("id_a", "rx_1", '"Oslo"}'),
        "H": delta("id_b", "rx_2", '"CET"}'),
        "A": call("id_a", "rx_1", "weather", {"city": "Oslo"}),
        "B": call("id_b", "rx_2", "time", {"tz": "CET"}),
    }
    assert run("-a-b-x-y-(f,|)", values) == expected("-D-E-G-H-(A,B,f,|)", values)


def test_litellm_parallel_calls_sharing_index_0_with_different_ids() -> None:
    values: dict[str | float, object] = {
        "a": frag(0, "id_a", "weather", '{"city":'),
        "x": frag(0, args='"Oslo"}'),
        "b": frag(0, "id_b", "weather", '{"city":'),
        "y": frag(0, args='"Rome"}'),
        "f": stop,
        "D": delta("id_a", "rx_1", '{"city":', name="weather"),
        "E": delta("id_a", "rx_1", '"Oslo"}'),
        "G": delta("id_b", "rx_2", '{"city":', name="weather"),
        "H": delta("id_b", "rx_2", '"Rome"}'),
        "A": call("id_a", "rx_1", "weather", {"city": "Oslo"}),
        "B": call("id_b", "rx_2", "weather", {"city": "Rome"}),
    }
    assert run("-a-x-b-y-(f,|)", values) == expected("-D-E-G-H-(A,B,f,|)", values)


def test_glm4_new_id_on_every_chunk_keeps_one_call_and_the_first_id() -> None:
    values: dict[str | float, object] = {
        "a": frag(0, "id_1", "weather", '{"city"'),
        "b": frag(0, "id_2", None, ':"Oslo"'),
        "c": frag(0, "id_3", None, "}"),
        "f": stop,
        "D": delta("id_1", "rx_1", '{"city"', name="weather"),
        "E": delta("id_1", "rx_1", ':"Oslo"'),
        "G": delta("id_1", "rx_1", "}"),
        "A": call("id_1", "rx_1", "weather", {"city": "Oslo"}),
    }
    assert run("-a-b-c-(f,|)", values) == expected("-D-E-G-(A,f,|)", values)


def test_vllm_same_id_and_name_repeated_are_replaced_not_concatenated() -> None:
    values: dict[str | float, object] = {
        "a": frag(0, "call_1", "weather", '{"city":'),
        "b": frag(0, "call_1", "weather", '"Oslo"'),
        "c": frag(0, "call_1", "weather", "}"),
        "f": stop,
        "D": delta("call_1", "rx_1", '{"city":', name="weather"),
        "E": delta("call_1", "rx_1", '"Oslo"'),
        "G": delta("call_1", "rx_1", "}"),
        "A": call("call_1", "rx_1", "weather", {"city": "Oslo"}),
    }
    assert run("-a-b-c-(f,|)", values) == expected("-D-E-G-(A,f,|)", values)


def test_deepseek_empty_id_and_name_on_continuation_chunks_are_absent() -> None:
    values: dict[str | float, object] = {
        "a": frag(0, "id_a", "weather", ""),
        "b": frag(0, "", "", '{"city":'),
        "c": frag(0, "", "", '"Oslo"}'),
        "f": stop,
        "D": delta("id_a", "rx_1", "", name="weather"),
        "E": delta("id_a", "rx_1", '{"city":'),
        "G": delta("id_a", "rx_1", '"Oslo"}'),
        "A": call("id_a", "rx_1", "weather", {"city": "Oslo"}),
    }
    assert run("-a-b-c-(f,|)", values) == expected("-D-E-G-(A,f,|)", values)


def test_google_no_index_keys_by_id_then_latest_call() -> None:
    values: dict[str | float, object] = {
        "a": frag(None, "id_a", "weather", '{"city":'),
        "x": frag(None, None, None, '"Oslo"}'),
        "b": frag(None, None, "time", '{"tz":'),
        "y": frag(None, None, None, '"CET"}'),
        "z": frag(None, "id_a", None, ""),
        "f": stop,
        "D": delta("id_a", "rx_1", '{"city":', name="weather"),
        "E": delta("id_a", "rx_1", '"Oslo"}'),
        "G": delta("call_1", "rx_2", '{"tz":', name="time"),
        "H": delta("call_1", "rx_2", '"CET"}'),
        "A": call("id_a", "rx_1", "weather", {"city": "Oslo"}),
        "B": call("call_1", "rx_2", "time", {"tz": "CET"}),
    }
    # "z" repeats a known id with nothing new: it joins that call and carries nothing to show.
    assert run("-a-x-b-y-z-(f,|)", values) == expected("-D-E-G-H---(A,B,f,|)", values)


def test_sparse_non_zero_based_indexes() -> None:
    values: dict[str | float, object] = {
        "a": frag(3, None, "weather", '{"city":'),
        "b": frag(7, None, "time", '{"tz":'),
        "x": frag(3, None, None, '"Oslo"}'),
        "y": frag(7, None, None, '"CET"}'),
        "f": stop,
        "D": delta("call_1", "rx_1", '{"city":', name="weather"),
        "E": delta("call_2", "rx_2", '{"tz":', name="time"),
        "G": delta("call_1", "rx_1", '"Oslo"}'),
        "H": delta("call_2", "rx_2", '"CET"}'),
        "A": call("call_1", "rx_1", "weather", {"city": "Oslo"}),
        "B": call("call_2", "rx_2", "time", {"tz": "CET"}),
    }
    assert run("-a-b-x-y-(f,|)", values) == expected("-D-E-G-H-(A,B,f,|)", values)


def test_several_calls_in_one_delta() -> None:
    values: dict[str | float, object] = {
        "a": frag(0, "id_a", "weather", '{"city":"Oslo"}'),
        "b": frag(1, "id_b", "weather", '{"city":"Rome"}'),
        "f": stop,
        "D": delta("id_a", "rx_1", '{"city":"Oslo"}', name="weather"),
        "E": delta("id_b", "rx_2", '{"city":"Rome"}', name="weather"),
        "A": call("id_a", "rx_1", "weather", {"city": "Oslo"}),
        "B": call("id_b", "rx_2", "weather", {"city": "Rome"}),
    }
    assert run("-(a,b)-(f,|)", values) == expected("-(D,E)-(A,B,f,|)", values)


def test_arguments_split_inside_an_escape_and_a_multibyte_character() -> None:
    # An escaped quote, a \u escape and a surrogate pair (an emoji) are all cut in two.
    pieces = ['{"q":"a\\', "u00e9 \\", '"x\\"', " \\ud83d", "\\ude00 日", '本"}']
    values: dict[str | float, object] = {
        "K": frag(0, None, "search", pieces[0]),
        **{"DEGHJ"[n - 1]: frag(0, None, None, pieces[n]) for n in range(1, 6)},
        "F": stop,
        "a": delta("call_1", "rx_1", pieces[0], name="search"),
        **{"bcdef"[n - 1]: delta("call_1", "rx_1", pieces[n]) for n in range(1, 6)},
        "C": call("call_1", "rx_1", "search", {"q": 'a\u00e9 "x" \U0001f600 日本'}),
    }
    assert "".join(pieces) == '{"q":"a\\u00e9 \\"x\\" \\ud83d\\ude00 日本"}'
    assert run("-K-D-E-G-H-J-(F,|)", values) == expected("-a-b-c-d-e-f-(C,F,|)", values)


def test_zero_argument_tool_gets_an_empty_object() -> None:
    values: dict[str | float, object] = {
        "a": frag(0, "id_a", "now", ""),
        "b": frag(1, "id_b", "today", ""),
        "x": frag(1, None, None, "  "),
        "f": stop,
        "D": delta("id_a", "rx_1", "", name="now"),
        "E": delta("id_b", "rx_2", "", name="today"),
        "G": delta("id_b", "rx_2", "  "),
        "A": call("id_a", "rx_1", "now", {}),
        "B": call("id_b", "rx_2", "today", {}),
    }
    assert run("-a-b-x-(f,|)", values) == expected("-D-E-G-(A,B,f,|)", values)


def test_invalid_json_arguments_are_kept_as_the_raw_string() -> None:
    values: dict[str | float, object] = {
        "a": frag(0, "id_a", "weather", "{city: Oslo"),
        "f": stop,
        "D": delta("id_a", "rx_1", "{city: Oslo", name="weather"),
        "A": call("id_a", "rx_1", "weather", "{city: Oslo"),
    }
    assert run("-a-(f,|)", values) == expected("-D-(A,f,|)", values)


def test_a_prefix_that_already_parses_is_not_finalized_early() -> None:
    values: dict[str | float, object] = {
        "a": frag(0, "id_a", "add", '{"a":1}'),
        "t": TextDelta(text="..."),
        "b": frag(0, None, None, ',"b":2}'),
        "f": stop,
        "D": delta("id_a", "rx_1", '{"a":1}', name="add"),
        "E": delta("id_a", "rx_1", ',"b":2}'),
        "A": call("id_a", "rx_1", "add", '{"a":1},"b":2}'),
    }
    # The joined text is not JSON (the model's own mistake): what matters is that no call was
    # completed after '{"a":1}' and that both pieces reach the one call.
    assert run("-a-t-b-(f,|)", values) == expected("-D-t-E-(A,f,|)", values)


def test_a_prefix_that_parses_continues_into_the_whole_object() -> None:
    values: dict[str | float, object] = {
        "a": frag(0, "id_a", "add", '{"a":1'),
        "b": frag(0, None, None, "}"),
        "c": frag(0, None, None, ""),
        "f": stop,
        "D": delta("id_a", "rx_1", '{"a":1', name="add"),
        "E": delta("id_a", "rx_1", "}"),
        "A": call("id_a", "rx_1", "add", {"a": 1}),
    }
    assert run("-a-b-c-(f,|)", values) == expected("-D-E---(A,f,|)", values)


def test_error_drops_partial_calls_and_passes_the_error() -> None:
    cut = StreamTruncatedError("connection closed before [DONE]")
    values: dict[str | float, object] = {
        "a": frag(0, "id_a", "delete_files", '{"path":"/tmp'),
        "D": delta("id_a", "rx_1", '{"path":"/tmp', name="delete_files"),
    }
    results = run("-a-#", values, cut)
    assert results == expected("-D-#", values, cut)
    assert isinstance(results[-1].value, OnError)
    assert results[-1].value.exception is cut


def test_stream_reset_drops_open_calls_and_passes_through() -> None:
    reset = StreamReset(attempt=1, reason="connection reset")
    values: dict[str | float, object] = {
        "a": frag(0, "id_a", "weather", '{"city":"Os'),
        "r": reset,
        "b": frag(0, "id_b", "weather", '{"city":"Oslo"}'),
        "f": stop,
        "D": delta("id_a", "rx_1", '{"city":"Os', name="weather"),
        "E": delta("id_b", "rx_2", '{"city":"Oslo"}', name="weather"),
        "B": call("id_b", "rx_2", "weather", {"city": "Oslo"}),
    }
    assert run("-a-r-b-(f,|)", values) == expected("-D-r-E-(B,f,|)", values)


def test_the_tool_call_and_its_deltas_share_the_minted_ids() -> None:
    with marbles_testing() as (start, cold, _hot, _exp):
        values: dict[str | float, object] = {"a": frag(0, None, "ping", "{}")}
        results = start(cold("-a-|", values, None).pipe(accumulate_tool_calls()))
    first, last = (record.value.value for record in results if isinstance(record.value, OnNext))
    assert isinstance(first, ToolCallDelta) and isinstance(last, ToolCall)
    assert re.fullmatch(r"call_[0-9a-f]{32}", first.id)
    assert re.fullmatch(r"rx_[0-9a-f]{32}", first.internal_call_id)
    assert (last.id, last.call_id, last.internal_call_id) == (first.id, first.id, first.internal_call_id)


def test_dispose_unsubscribes_the_source() -> None:
    scheduler = TestScheduler()
    p = frag(0, "id_a", "ping", "{")
    xs = scheduler.create_hot_observable(on_next(210, p), on_next(400, frag(0, args="}")))
    results = scheduler.start(lambda: xs.pipe(accumulate_tool_calls()), disposed=300)
    assert normalized(results.messages) == [on_next(210, delta("id_a", "rx_1", "{", name="ping"))]
    assert xs.subscriptions == [subscribe(200, 300)]


def test_resubscribing_starts_clean() -> None:
    values: dict[str | float, object] = {
        "a": frag(0, "id_a", "ping", '{"n":'),
        "b": frag(0, None, None, "1}"),
    }
    with marbles_testing() as (start, cold, _hot, _exp):
        gated = cold("-a-b-|", values, None).pipe(accumulate_tool_calls())
        # The first subscription is cut after one delta, with its call still open.
        results = normalized(start(reactivex.concat(gated.pipe(ops.take(1)), gated)))
        expected_values: dict[str | float, object] = {
            "D": delta("id_a", "rx_1", '{"n":', name="ping"),
            "E": delta("id_a", "rx_2", '{"n":', name="ping"),
            "G": delta("id_a", "rx_2", "1}"),
            "B": call("id_a", "rx_2", "ping", {"n": 1}),
        }
        # The second subscription starts at 201, when the first one ends: its events are one tick later.
        assert results == [
            on_next(201, expected_values["D"]),
            on_next(202, expected_values["E"]),
            on_next(204, expected_values["G"]),
            on_next(206, expected_values["B"]),
            on_completed(206),
        ]


def test_odd_fragments_never_crash() -> None:
    # Arguments with no call open start one (no name: ""); an index-only or all-empty fragment
    # carries nothing; an unknown id without index or name continues the latest call.
    values: dict[str | float, object] = {
        "a": frag(None, None, None, '{"x":'),
        "b": frag(5, None, None, ""),
        "c": frag(None, "", "", ""),
        "d": frag(None, "id_q", None, "1}"),
        "f": Final(finish_reason="stop"),
        "D": delta("call_1", "rx_1", '{"x":'),
        "E": delta("id_q", "rx_1", "1}"),
        "A": call("id_q", "rx_1", "", {"x": 1}),
    }
    assert run("-a-b-c-d-(f,|)", values) == expected("-D-----E-(A,f,|)", values)


def whole(id: str, call_id: str, name: str, arguments: Any, internal: str = "") -> ToolCall:
    """A whole call as a dialect sends it when the server marks the end of each call."""
    return ToolCall(id=id, call_id=call_id, internal_call_id=internal, name=name, arguments=arguments)


def test_a_whole_call_completes_the_call_its_fragments_opened() -> None:
    values: dict[str | float, object] = {
        "p": frag(0, "fc_1", "get_weather"),
        "q": frag(0, "fc_1", None, '{"city":"Paris"}'),
        "w": whole("fc_1", "call_1", "get_weather", {"city": "Paris"}),
        "f": Final(finish_reason="completed"),
        "d": delta("fc_1", "rx_1", name="get_weather"),
        "e": delta("fc_1", "rx_1", '{"city":"Paris"}'),
        "c": whole("fc_1", "call_1", "get_weather", {"city": "Paris"}, internal="rx_1"),
    }
    assert run("-p-q-w-(f,|)", values) == expected("-d-e-c-(f,|)", values)


def test_whole_calls_of_parallel_calls_each_complete_their_own_and_nothing_twice() -> None:
    values: dict[str | float, object] = {
        "p": frag(0, "fc_a", "add"),
        "q": frag(0, "fc_a", None, '{"a":1}'),
        "w": whole("fc_a", "call_a", "add", {"a": 1}),
        "r": frag(1, "fc_b", "add"),
        "s": frag(1, "fc_b", None, '{"a":2}'),
        "x": whole("fc_b", "call_b", "add", {"a": 2}),
        "f": Final(finish_reason="completed"),
        "d": delta("fc_a", "rx_1", name="add"),
        "e": delta("fc_a", "rx_1", '{"a":1}'),
        "A": whole("fc_a", "call_a", "add", {"a": 1}, internal="rx_1"),
        "D": delta("fc_b", "rx_2", name="add"),
        "E": delta("fc_b", "rx_2", '{"a":2}'),
        "B": whole("fc_b", "call_b", "add", {"a": 2}, internal="rx_2"),
    }
    assert run("-p-q-w-r-s-x-(f,|)", values) == expected("-d-e-A-D-E-B-(f,|)", values)


def test_a_whole_call_matches_its_fragments_by_call_id_too() -> None:
    values: dict[str | float, object] = {
        "p": frag(0, "call_9", "ping", "{}"),
        "w": whole("fc_9", "call_9", "ping", {}),
        "d": delta("call_9", "rx_1", "{}", name="ping"),
        "c": whole("fc_9", "call_9", "ping", {}, internal="rx_1"),
    }
    assert run("-p-w-|", values) == expected("-d-c-|", values)


def test_a_whole_call_without_fragments_gets_a_minted_internal_id() -> None:
    values: dict[str | float, object] = {
        "w": whole("toolu_1", "toolu_1", "ping", {}),
        "c": whole("toolu_1", "toolu_1", "ping", {}, internal="rx_1"),
    }
    assert run("-w-|", values) == expected("-c-|", values)


def test_after_a_whole_call_its_index_starts_a_new_call() -> None:
    # The closed call is gone from every key: a later fragment on its index opens a new call.
    values: dict[str | float, object] = {
        "p": frag(0, "toolu_1", "ping", "{}"),
        "w": whole("toolu_1", "toolu_1", "ping", {}),
        "q": frag(0, None, None, '{"n":2}'),
        "f": stop,
        "d": delta("toolu_1", "rx_1", "{}", name="ping"),
        "c": whole("toolu_1", "toolu_1", "ping", {}, internal="rx_1"),
        "e": delta("call_1", "rx_2", '{"n":2}'),
        "g": call("call_1", "rx_2", "", {"n": 2}),
    }
    assert run("-p-w-q-(f,|)", values) == expected("-d-c-e-(g,f,|)", values)


def test_retrying_passes_through_and_keeps_the_open_calls() -> None:
    # A Retrying comes before a turn's first event; even between fragments it is no reset.
    values: dict[str | float, object] = {
        "w": Retrying(attempt=2, delay=0.5, reason="HTTP 503", status=503),
        "p": frag(0, "id_a", "ping", "{"),
        "q": frag(0, args="}"),
        "f": stop,
        "d": delta("id_a", "rx_1", "{", name="ping"),
        "e": delta("id_a", "rx_1", "}"),
        "c": call("id_a", "rx_1", "ping", {}),
    }
    assert run("-w-p-w-q-(f,|)", values) == expected("-w-d-w-e-(c,f,|)", values)


def test_an_error_before_any_tool_event_passes_through_after_the_text() -> None:
    cut = StreamTruncatedError("connection closed before [DONE]")
    values: dict[str | float, object] = {"t": TextDelta(text="Hel")}
    results = run("-t-#", values, cut)
    assert results == expected("-t-#", values, cut)
    assert isinstance(results[-1].value, OnError)
    assert results[-1].value.exception is cut
