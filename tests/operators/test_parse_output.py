"""``parse_output(T)``: marble tests, and JSON texts split anywhere (hypothesis)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, TypedDict, cast

import msgspec
import pytest
import reactivex
from hypothesis import given, settings
from hypothesis import strategies as st
from reactivex import Observable, abc
from reactivex.notification import OnError
from reactivex.testing import ReactiveTest, TestScheduler
from reactivex.testing.marbles import marbles_testing
from test_partial_json import is_prefix

from rxllm.errors import OutputValidationError, StreamTruncatedError
from rxllm.events import (
    AgentEvent,
    Final,
    Output,
    PartialOutput,
    ReasoningDelta,
    StreamReset,
    TextDelta,
    ToolCallDelta,
)
from rxllm.operators import parse_output
from rxllm.testing import assert_marbles, event_values

on_next, on_completed, subscribe = ReactiveTest.on_next, ReactiveTest.on_completed, ReactiveTest.subscribe


class Person(msgspec.Struct):
    name: str
    age: int


@dataclasses.dataclass
class Line:
    sku: str
    quantity: int
    tags: list[str]


class Order(TypedDict):
    id: str
    lines: list[Line]
    notes: dict[str, str]


f = Final(finish_reason="stop")
values = event_values(
    a=TextDelta(text='{"name": "A'),
    b=TextDelta(text='da", "age":'),
    c=TextDelta(text=" 36}"),
    f=f,
    p=PartialOutput(value={"name": "A"}),
    q=PartialOutput(value={"name": "Ada"}),
    r=PartialOutput(value={"name": "Ada", "age": 36}),
    o=Output(value=Person(name="Ada", age=36)),
)


def test_partial_values_as_the_json_grows_then_the_validated_value_after_the_final() -> None:
    assert_marbles(
        parse_output(Person),
        "-a-----b-----c-----f-----|",
        "-(a,p)-(b,q)-(c,r)-(f,o)-|",
        values,
    )


def test_a_piece_that_changes_nothing_shown_brings_no_partial_value() -> None:
    local = {
        **values,
        "w": TextDelta(text="  "),
        "k": TextDelta(text=', "ag'),
        "n": TextDelta(text='e": 3'),
        "m": TextDelta(text="6}"),
        "s": TextDelta(text='{"name": "Ada"'),
        "t": PartialOutput(value={"name": "Ada"}),
    }
    assert_marbles(
        parse_output(Person),
        "-s-----w-k-n-m-----f-----|",
        "-(s,t)-w-k-n-(m,r)-(f,o)-|",
        local,
    )


def test_other_events_pass_through_unchanged_and_in_order() -> None:
    local = {
        **values,
        "x": ReasoningDelta(text="thinking"),
        "d": ToolCallDelta(id="call_1", internal_call_id="rx_1", name="lookup", arguments_delta="{}"),
    }
    assert_marbles(
        parse_output(Person),
        "-x-a-----d-b-----c-----f-----|",
        "-x-(a,p)-d-(b,q)-(c,r)-(f,o)-|",
        local,
    )


def test_a_value_that_does_not_validate_ends_with_the_path_in_msgspecs_message() -> None:
    local = {
        **values,
        "c": TextDelta(text=' "old"}'),
        "s": PartialOutput(value={"name": "Ada", "age": "old"}),
    }
    raw = '{"name": "Ada", "age": "old"}'
    error = OutputValidationError("Expected `int`, got `str` - at `$.age`", raw, output_name="Person")
    assert str(error) == "the answer is not a valid Person: Expected `int`, got `str` - at `$.age`"
    assert_marbles(
        parse_output(Person),
        "-a-----b-----c-----f-----|",
        "-(a,p)-(b,q)-(c,s)-(f,#)",
        local,
        expected_error=error,
    )
    caught = _error_of(["a", "b", "c", "f"], local)
    assert (caught.raw, caught.message, caught.output_name) == (
        raw,
        "Expected `int`, got `str` - at `$.age`",
        "Person",
    )


def _error_of(names: list[str], lookup: dict[str | float, object]) -> OutputValidationError:
    events = [cast(AgentEvent, lookup[name]) for name in names]
    errors: list[Exception] = []
    reactivex.from_iterable(events).pipe(parse_output(Person)).subscribe(on_error=errors.append)
    (error,) = errors
    assert isinstance(error, OutputValidationError)
    return error


def test_malformed_json_stops_the_partial_values_and_ends_with_msgspecs_message() -> None:
    local = {**values, "b": TextDelta(text='da" "age": 36}')}
    raw = '{"name": "Ada" "age": 36}'
    error = OutputValidationError(
        "JSON is malformed: expected ',' or '}' (byte 15)", raw, output_name="Person"
    )
    assert_marbles(
        parse_output(Person),
        "-a-----b-f-----|",
        "-(a,p)-b-(f,#)",
        local,
        expected_error=error,
    )
    assert _error_of(["a", "b", "f"], local).raw == raw


def test_a_stream_cut_halfway_through_the_json_ends_with_the_upstream_error_and_no_output() -> None:
    cut = StreamTruncatedError("the connection closed before [DONE]", connection_lost=True)
    with marbles_testing() as (start, cold, _hot, exp):
        source: Observable[AgentEvent] = cold("-a-----b-----#", values, cut)
        results = start(source.pipe(parse_output(Person)))
        assert results == exp("-(a,p)-(b,q)-#", values, cut)
    last = results[-1].value
    assert isinstance(last, OnError) and last.exception is cut


def test_a_stream_reset_discards_the_text_so_far() -> None:
    local = {
        **values,
        "z": StreamReset(attempt=1, reason="connection reset"),
        "s": TextDelta(text='{"name": "Ada", "age": 36}'),
    }
    # Without the reset, '{"name": "A' + '{"name"...' would be malformed.
    assert_marbles(
        parse_output(Person),
        "-a-----z-s-----f-----|",
        "-(a,p)-z-(s,r)-(f,o)-|",
        local,
    )


def test_completion_without_a_final_validates_the_text_before_completing() -> None:
    assert_marbles(
        parse_output(Person),
        "-a-----b-----c-----|",
        "-(a,p)-(b,q)-(c,r)-(o,|)",
        values,
    )


def test_a_turn_with_no_text_is_no_valid_answer() -> None:
    error = OutputValidationError("Input data was truncated", "", output_name="Person")
    assert_marbles(parse_output(Person), "-f-----|", "-(f,#)", values, expected_error=error)


def test_an_empty_source_completes_without_output() -> None:
    assert_marbles(parse_output(Person), "--|", "--|", values)


def test_each_structured_turn_gets_its_output() -> None:
    local = {
        **values,
        "s": TextDelta(text='{"name": "Bo", "age": 7}'),
        "t": PartialOutput(value={"name": "Bo", "age": 7}),
        "u": Output(value=Person(name="Bo", age=7)),
    }
    assert_marbles(
        parse_output(Person),
        "-a-----b-----c-----f-----s-----f-----|",
        "-(a,p)-(b,q)-(c,r)-(f,o)-(s,t)-(f,u)-|",
        local,
    )


NESTED = (
    '{"id": "o-1", "lines": [{"sku": "A\\u00e9", "quantity": 2, "tags": ["x", "y"]}, '
    '{"sku": "B\\n\\"q\\"", "quantity": 10, "tags": []}], "notes": {"gift": "\\ud83c\\udf81"}}'
)


def test_nested_lists_and_objects_partial_values_at_the_right_moments() -> None:
    pieces = [
        '{"id": "o-1", "lines": [{"sku": "A\\u0',
        '0e9", "quan',
        'tity": 2, "tags": ["x',
        '", "y"]}, {"s',
        'ku": "B\\n\\"q\\"", "quantity": 1',
        '0, "tags": []}], "notes": {"gift": "\\ud83c',
        '\\udf81"}}',
    ]
    assert "".join(pieces) == NESTED
    events: list[AgentEvent] = [*(TextDelta(text=piece) for piece in pieces), f]
    out: list[AgentEvent] = []
    reactivex.from_iterable(events).pipe(parse_output(Order)).subscribe(out.append)
    shown = [event.value for event in out if isinstance(event, PartialOutput)]
    line_a = {"sku": "Aé", "quantity": 2, "tags": ["x", "y"]}
    assert shown == [
        {"id": "o-1", "lines": [{"sku": "A"}]},
        {"id": "o-1", "lines": [{"sku": "Aé"}]},
        {"id": "o-1", "lines": [{"sku": "Aé", "quantity": 2, "tags": ["x"]}]},
        {"id": "o-1", "lines": [line_a, {}]},
        {"id": "o-1", "lines": [line_a, {"sku": 'B\n"q"'}]},
        {
            "id": "o-1",
            "lines": [line_a, {"sku": 'B\n"q"', "quantity": 10, "tags": []}],
            "notes": {"gift": ""},
        },
        {
            "id": "o-1",
            "lines": [line_a, {"sku": 'B\n"q"', "quantity": 10, "tags": []}],
            "notes": {"gift": "🎁"},
        },
    ]
    assert out[-1] == Output(
        value={
            "id": "o-1",
            "lines": [Line("Aé", 2, ["x", "y"]), Line('B\n"q"', 10, [])],
            "notes": {"gift": "🎁"},
        }
    )
    assert msgspec.json.encode(out[-1]).startswith(b'{"type":"output","value":{"id":"o-1","lines":[{"sku":"A')


class Record(msgspec.Struct):
    title: str
    scores: list[float]
    owner: Person | None
    meta: dict[str, list[int]]


records = st.builds(
    Record,
    title=st.text(),
    scores=st.lists(st.floats(allow_nan=False, allow_infinity=False), max_size=4),
    owner=st.none() | st.builds(Person, name=st.text(max_size=8), age=st.integers(-(2**40), 2**40)),
    meta=st.dictionaries(
        st.text(max_size=4), st.lists(st.integers(-(2**63), 2**63 - 1), max_size=3), max_size=3
    ),
)


@settings(max_examples=200, deadline=None)
@given(record=records, ascii=st.booleans(), data=st.data())
def test_any_answer_split_anywhere_gives_prefixes_of_the_final_value(
    record: Record, ascii: bool, data: st.DataObject
) -> None:
    builtins = msgspec.to_builtins(record)
    text = json.dumps(builtins, ensure_ascii=ascii)  # ascii: escapes and surrogate pairs to split
    cuts = sorted(data.draw(st.lists(st.integers(0, len(text)), max_size=20)))
    pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True) if b > a]
    events: list[AgentEvent] = [*(TextDelta(text=piece) for piece in pieces), f]
    out: list[AgentEvent] = []
    errors: list[Exception] = []
    reactivex.from_iterable(events).pipe(parse_output(Record)).subscribe(out.append, errors.append)
    assert errors == []
    assert out[-1] == Output(value=record)
    assert [event for event in out if isinstance(event, TextDelta | Final)] == events  # all passed on
    shown = [event.value for event in out if isinstance(event, PartialOutput)]
    assert shown, "a non-empty object shows at least once"
    for before, after in zip(shown, shown[1:], strict=False):
        assert before != after
    for partial in shown:
        assert is_prefix(partial, builtins), (partial, builtins)


def test_dispose_unsubscribes_the_source() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_hot_observable(on_next(210, TextDelta(text='{"name": "A')))
    results = scheduler.start(lambda: xs.pipe(parse_output(Person)), disposed=300)
    assert results.messages == [
        on_next(210, TextDelta(text='{"name": "A')),
        on_next(210, PartialOutput(value={"name": "A"})),
    ]
    assert xs.subscriptions == [subscribe(200, 300)]


class Recorder(abc.ObserverBase[Any]):
    """A raw observer: what the stage does itself, without ``Observable.subscribe``'s auto-detach."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def on_next(self, event: object) -> None:
        self.seen.append(type(event).__name__)

    def on_error(self, error: Exception) -> None:
        self.seen.append(f"error {type(error).__name__}")

    def on_completed(self) -> None:
        self.seen.append("completed")


def test_a_validation_error_unsubscribes_the_source_at_once() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_hot_observable(
        on_next(210, TextDelta(text="[]")), on_next(220, f), on_next(230, f), on_completed(400)
    )
    recorder = Recorder()
    stage = xs.pipe(parse_output(Person))
    scheduler.schedule_absolute(200, lambda *_: stage._subscribe_core(recorder, scheduler))
    scheduler.advance_to(500)
    assert recorder.seen == ["TextDelta", "PartialOutput", "Final", "error OutputValidationError"]
    assert xs.subscriptions == [subscribe(200, 220)]


def test_a_type_msgspec_cannot_validate_is_refused_when_the_operator_is_made() -> None:
    with pytest.raises(TypeError, match="is not a type msgspec can validate"):
        parse_output(object)


def test_outputs_of_user_types_encode_as_json() -> None:
    assert msgspec.json.encode(Output(value=Person(name="Ada", age=36))) == (
        b'{"type":"output","value":{"name":"Ada","age":36}}'
    )
    assert (
        msgspec.json.encode(PartialOutput(value={"name": "A"}))
        == b'{"type":"partial_output","value":{"name":"A"}}'
    )
    decoded: Any = msgspec.json.decode(b'{"type":"output","value":{"name":"Ada","age":36}}', type=Output)
    assert decoded == Output(value={"name": "Ada", "age": 36})
