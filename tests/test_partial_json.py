"""``PartialJsonParser``: the step class of structured output, fed JSON text in pieces."""

from __future__ import annotations

import copy
import json
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rxllm.partial_json import PartialJsonError, PartialJsonParser


def fed(*pieces: str) -> list[Any]:
    """What ``feed`` returned for each piece, then what ``finish`` returned."""
    parser = PartialJsonParser()
    return [parser.feed(piece) for piece in pieces] + [parser.finish()]


def test_the_value_so_far_after_each_piece() -> None:
    assert fed('{"name": "Ada', ' Lovelace", "ag', 'e": 3', "6}") == [
        {"name": "Ada"},
        {"name": "Ada Lovelace"},
        None,
        {"name": "Ada Lovelace", "age": 36},
        {"name": "Ada Lovelace", "age": 36},
    ]


def test_nested_objects_and_arrays_show_what_they_hold_so_far() -> None:
    assert fed('{"a": [1, {"b": ["x', 'y", tr', "ue]}", "], ", '"c": {}}') == [
        {"a": [1, {"b": ["x"]}]},
        {"a": [1, {"b": ["xy"]}]},
        {"a": [1, {"b": ["xy", True]}]},
        None,
        {"a": [1, {"b": ["xy", True]}], "c": {}},
        {"a": [1, {"b": ["xy", True]}], "c": {}},
    ]


def test_a_key_alone_shows_nothing_the_member_shows_when_its_value_starts() -> None:
    parser = PartialJsonParser()
    shown = [parser.feed(piece) for piece in ("{", '"ke', 'y"', " : ", '"', "v")]
    assert shown == [{}, None, None, None, {"key": ""}, {"key": "v"}]


@pytest.mark.parametrize(
    ("pieces", "shown"),
    [
        (["[1", "2", "]"], [[], None, [12]]),
        (["[-", "1", ".", "5", "e", "+", "2", ","], [[], None, None, None, None, None, None, [-150.0]]),
        (["[0", "]"], [[], [0]]),
        (["[1.25", " "], [[], [1.25]]),
    ],
)
def test_a_number_shows_once_it_is_complete(pieces: list[str], shown: list[Any]) -> None:
    parser = PartialJsonParser()
    assert [parser.feed(piece) for piece in pieces] == shown


def test_a_top_level_number_is_complete_only_at_finish() -> None:
    parser = PartialJsonParser()
    assert (parser.feed("4"), parser.feed("2"), parser.done) == (None, None, False)
    assert parser.finish() == 42


@pytest.mark.parametrize(("word", "value"), [("true", True), ("false", False), ("null", None)])
def test_literals_show_when_their_last_letter_arrives(word: str, value: Any) -> None:
    parser = PartialJsonParser()
    assert parser.feed("[") == []
    assert [parser.feed(letter) for letter in word[:-1]] == [None] * (len(word) - 1)
    assert parser.feed(word[-1]) == [value]


def test_whitespace_and_closing_change_nothing_shown() -> None:
    assert fed('{"a": "b', '"', "  \n\t", "}", "  ") == [{"a": "b"}, None, None, None, None, {"a": "b"}]


ESCAPED = r'["tab\tquote\" back\\ slash\/ nl\n \u00e9 \u6771 \ud83d\ude00 end", "é東😀"]'


def test_escapes_and_unicode_split_at_every_point() -> None:
    expected = msgspec.json.decode(ESCAPED)
    for cut in range(len(ESCAPED) + 1):
        parser = PartialJsonParser()
        parser.feed(ESCAPED[:cut])
        parser.feed(ESCAPED[cut:])
        assert parser.finish() == expected, cut


def test_escapes_fed_one_character_at_a_time_never_show_half_an_escape() -> None:
    parser = PartialJsonParser()
    shown = [
        value for value in (parser.feed(char) for char in r'["a\ud83d\ude00b\u00e9\n"]') if value is not None
    ]
    assert shown == [[], [""], ["a"], ["a😀"], ["a😀b"], ["a😀bé"], ["a😀bé\n"]]


def test_closed_containers_are_shared_and_earlier_values_never_change() -> None:
    parser = PartialJsonParser()
    first = parser.feed('{"x": [1, {"y": 2}], "z": "a')
    second = parser.feed("b")
    assert first == {"x": [1, {"y": 2}], "z": "a"}
    assert second == {"x": [1, {"y": 2}], "z": "ab"}
    assert first is not second
    assert first["x"] is second["x"]  # closed: shared, not copied


def test_top_level_strings_and_scalars() -> None:
    assert fed('"ab', 'c"') == ["ab", "abc", "abc"]
    assert fed("tr", "ue") == [None, True, True]
    assert fed(" null ") == [None, None]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"a" 1}', "malformed JSON at character 5: expected ':' after a key, got '1'"),
        ("[1,]", "malformed JSON at character 3: a trailing comma before ']'"),
        ('{"a": 1,}', "malformed JSON at character 8: a trailing comma before '}'"),
        ("[01]", "malformed JSON at character 1: an invalid number '01'"),
        ("[1.]", "malformed JSON at character 1: an invalid number '1.'"),
        ("[1e400]", "malformed JSON at character 1: a number out of range '1e400'"),
        (r'["\x"]', "malformed JSON at character 2: an invalid escape '\\\\x'"),
        (r'["\u12G4"]', "malformed JSON at character 2: an invalid \\u escape"),
        (r'["\ud83dx"]', "malformed JSON at character 2: an unpaired UTF-16 surrogate"),
        (r'["\ude00"]', "malformed JSON at character 2: an unpaired UTF-16 surrogate"),
        (r'["\ud83d\u0041"]', "malformed JSON at character 2: an unpaired UTF-16 surrogate"),
        ('["a\nb"]', "malformed JSON at character 3: a control character (0x0a) inside a string"),
        ("[tx]", "malformed JSON at character 1: expected 'true'"),
        ("{1: 2}", "malformed JSON at character 1: expected a key (a string), got '1'"),
        ("[1 2]", "malformed JSON at character 3: expected ',' or ']', got '2'"),
        ('{"a": 1 "b"}', "malformed JSON at character 8: expected ',' or '}', got '\"'"),
        ("{} []", "malformed JSON at character 3: extra data after the JSON value: '['"),
        ("[,1]", "malformed JSON at character 1: expected a value, got ','"),
    ],
)
def test_malformed_text_is_an_error_where_it_shows(text: str, message: str) -> None:
    with pytest.raises(msgspec.DecodeError):
        msgspec.json.decode(text)  # msgspec agrees that it is not JSON
    parser = PartialJsonParser()
    with pytest.raises(PartialJsonError) as raised:
        parser.feed(text)
        parser.finish()
    assert str(raised.value) == message


def test_the_error_position_counts_from_the_start_of_the_whole_text() -> None:
    parser = PartialJsonParser()
    parser.feed('{"a": [1, 2')
    with pytest.raises(PartialJsonError) as raised:
        parser.feed(" x]}")
    assert raised.value.position == 12
    assert str(raised.value) == "malformed JSON at character 12: expected ',' or ']', got 'x'"


def test_a_failed_parser_stays_failed() -> None:
    parser = PartialJsonParser()
    with pytest.raises(PartialJsonError) as first:
        parser.feed("[}")
    with pytest.raises(PartialJsonError) as again:
        parser.feed("]")
    assert again.value is first.value
    with pytest.raises(PartialJsonError):
        parser.finish()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the JSON text holds no value"),
        ("  ", "the JSON text holds no value"),
        ('{"a": [1', "the JSON text ended before its value was complete"),
        ('"ab', "the JSON text ended before its value was complete"),
        ('{"a"', "the JSON text ended before its value was complete"),
        (r'"ab\u00', "the JSON text ended inside an escape"),
        (r'"\ud83d', "the JSON text ended inside an escape"),
        ("[1.", "malformed JSON at character 1: an invalid number '1.'"),
        ("-", "malformed JSON at character 0: an invalid number '-'"),
        ("[tru", "the JSON text ended inside 'tru'"),
    ],
)
def test_finish_on_an_incomplete_text_is_an_error(text: str, message: str) -> None:
    with pytest.raises(msgspec.DecodeError):
        msgspec.json.decode(text)
    parser = PartialJsonParser()
    parser.feed(text)
    with pytest.raises(PartialJsonError) as raised:
        parser.finish()
    assert str(raised.value) == message


# -- properties over generated documents, split anywhere ------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=5), children, max_size=5)
    ),
    max_leaves=25,
)


def is_prefix(partial: Any, final: Any) -> bool:
    """Whether ``partial`` is what a reader may see of ``final`` before all of it arrived."""
    if isinstance(final, dict):
        if not isinstance(partial, dict) or list(partial) != list(final)[: len(partial)]:
            return False
        keys = list(partial)
        return all(partial[k] == final[k] for k in keys[:-1]) and (
            not keys or is_prefix(partial[keys[-1]], final[keys[-1]])
        )
    if isinstance(final, list):
        if not isinstance(partial, list) or len(partial) > len(final):
            return False
        if not partial:
            return True
        last = len(partial) - 1
        return partial[:last] == final[:last] and is_prefix(partial[last], final[last])
    if isinstance(final, str):
        return isinstance(partial, str) and final.startswith(partial)
    return bool(partial == final) and type(partial) is type(final)


@settings(max_examples=300, deadline=None)
@given(value=json_values, ascii=st.booleans(), indent=st.sampled_from([None, 1]), data=st.data())
def test_any_document_split_anywhere(
    value: Any, ascii: bool, indent: int | None, data: st.DataObject
) -> None:
    text = json.dumps(value, ensure_ascii=ascii, indent=indent)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(text)), max_size=12)))
    pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
    parser = PartialJsonParser()
    shown: list[tuple[Any, Any]] = []
    for piece in pieces:
        partial = parser.feed(piece)
        if partial is not None:
            assert is_prefix(partial, value), (partial, value)
            shown.append((partial, copy.deepcopy(partial)))
    assert parser.finish() == value == msgspec.json.decode(text)
    for partial, when_shown in shown:
        assert partial == when_shown  # a value once returned never changes


@settings(max_examples=300, deadline=None)
@given(value=json_values)
def test_one_character_at_a_time_every_change_shows_once(value: Any) -> None:
    text = json.dumps(value, ensure_ascii=True)
    parser = PartialJsonParser()
    shown = [partial for partial in (parser.feed(char) for char in text) if partial is not None]
    for before, after in zip(shown, shown[1:], strict=False):
        assert before != after  # only a change is reported
    assert parser.finish() == value


@settings(max_examples=500, deadline=None)
@given(text=st.text(alphabet='{}[]",: 0123456789.eE-+tuaflsn\\\n', max_size=24))
def test_accepts_what_msgspec_accepts_and_gives_the_same_value(text: str) -> None:
    try:
        expected = msgspec.json.decode(text)
    except msgspec.DecodeError:
        expected = PartialJsonError
    parser = PartialJsonParser()
    try:
        parser.feed(text)
        got = parser.finish()
    except PartialJsonError:
        got = PartialJsonError
    assert got == expected
