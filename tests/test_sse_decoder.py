"""The pure SSE pieces of rxllm.sse: ``LineSplitter`` and ``SseDecoder``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rxllm.errors import EventTooLargeError, SseError
from rxllm.sse import LineSplitter, SseDecoder, SseEvent

BOM = b"\xef\xbb\xbf"


def decode(*pieces: bytes, max_event_size: int | None = None) -> list[SseEvent]:
    """Feed ``pieces`` one by one, then finish; all the events in order."""
    decoder = SseDecoder() if max_event_size is None else SseDecoder(max_event_size=max_event_size)
    events: list[SseEvent] = []
    for piece in pieces:
        events.extend(decoder.feed(piece))
    events.extend(decoder.finish())
    return events


def bytewise(blob: bytes) -> list[bytes]:
    return [blob[i : i + 1] for i in range(len(blob))]


# --- line ends -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("eol", [b"\n", b"\r", b"\r\n"], ids=["LF", "CR", "CRLF"])
def test_each_line_end_style_ends_lines_and_dispatches(eol: bytes) -> None:
    blob = eol.join([b"event: a", b"data: 1", b"data: 2", b"", b"data: 3", b"", b""])
    assert decode(blob) == [SseEvent(event="a", data="1\n2"), SseEvent(data="3")]


def test_mixed_line_ends_in_one_stream() -> None:
    assert decode(b"data: 1\r\ndata: 2\rdata: 3\n\r\ndata: 4\r\r") == [
        SseEvent(data="1\n2\n3"),
        SseEvent(data="4"),
    ]


def test_crlf_split_between_chunks_is_one_line_end() -> None:
    # Were the LF a second line end, "a" would be dispatched alone as a blank line.
    decoder = SseDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\ndata: b\r") == []
    assert decoder.feed(b"\n") == []
    assert decoder.feed(b"\r") == [SseEvent(data="a\nb")]
    assert decoder.feed(b"\n") == []  # the LF of that CRLF blank line: not a second blank line
    assert decoder.feed(b"") == []
    assert decoder.feed(b"data: c\r") == []
    assert decoder.feed(b"\n\r\n") == [SseEvent(data="c")]


def test_cr_at_chunk_end_waits_past_an_empty_chunk() -> None:
    assert decode(b"data: a\r", b"", b"\n", b"data: b\r\n\r\n") == [SseEvent(data="a\nb")]


def test_cr_then_cr_across_chunks_is_two_line_ends() -> None:
    assert decode(b"data: a\r", b"\rdata: b\r", b"\r") == [SseEvent(data="a"), SseEvent(data="b")]


def test_lf_then_cr_is_two_line_ends() -> None:
    assert decode(b"data: a\n", b"\rdata: b\n\n") == [SseEvent(data="a"), SseEvent(data="b")]


def test_other_unicode_line_breaks_are_data() -> None:
    text = "a\x0bb\x0cc\x1cd\x1de\x1ef\x85g\u2028h\u2029i"
    assert decode(b"data: " + text.encode() + b"\n\n") == [SseEvent(data=text)]


# --- fields ----------------------------------------------------------------------------------------------


def test_data_without_space_after_colon() -> None:
    assert decode(b"data:x\n\n") == [SseEvent(data="x")]


def test_data_with_one_space_strips_it() -> None:
    assert decode(b"data: x\n\n") == [SseEvent(data="x")]


def test_data_with_two_spaces_keeps_one() -> None:
    assert decode(b"data:  x\n\n") == [SseEvent(data=" x")]


def test_data_keeps_trailing_spaces_and_later_colons() -> None:
    assert decode(b'data: {"a": "b:c"}  \n\n') == [SseEvent(data='{"a": "b:c"}  ')]


def test_multi_line_data_joined_with_lf() -> None:
    assert decode(b"data: one\ndata:\ndata:  three\n\n") == [SseEvent(data="one\n\n three")]


def test_empty_data_line_dispatches_an_empty_event() -> None:
    assert decode(b"data:\n\ndata\n\n") == [SseEvent(data=""), SseEvent(data="")]


def test_event_field_sets_the_type_for_one_event() -> None:
    assert decode(b"event: delta\ndata: 1\n\ndata: 2\n\n") == [
        SseEvent(event="delta", data="1"),
        SseEvent(event="message", data="2"),
    ]


def test_empty_event_field_means_message() -> None:
    assert decode(b"event: x\nevent:\ndata: 1\n\n") == [SseEvent(event="message", data="1")]


def test_last_event_field_wins() -> None:
    assert decode(b"event: a\ndata: 1\nevent: b\n\n") == [SseEvent(event="b", data="1")]


def test_id_persists_across_events_until_changed() -> None:
    blob = b"data: 1\n\nid: 7\ndata: 2\n\ndata: 3\n\nid: 8\ndata: 4\n\nid\ndata: 5\n\n"
    assert decode(blob) == [
        SseEvent(data="1"),
        SseEvent(data="2", id="7"),
        SseEvent(data="3", id="7"),
        SseEvent(data="4", id="8"),
        SseEvent(data="5", id=""),
    ]


def test_id_with_nul_is_ignored() -> None:
    assert decode(b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n") == [
        SseEvent(data="a", id="1"),
        SseEvent(data="b", id="1"),
    ]


def test_id_in_a_block_without_data_still_sets_the_last_id() -> None:
    assert decode(b"id: 5\n\ndata: a\n\n") == [SseEvent(data="a", id="5")]


def test_retry_with_digits_sets_retry_of_its_event_only() -> None:
    assert decode(b"retry: 3000\ndata: a\n\ndata: b\n\nretry:0\ndata: c\n\n") == [
        SseEvent(data="a", retry=3000),
        SseEvent(data="b"),
        SseEvent(data="c", retry=0),
    ]


@pytest.mark.parametrize(
    "value",
    [b"", b"-1", b"+1", b"1.5", b"12a", b" 5", b"5 ", b"1e3", "\uff15".encode(), "\u0665".encode()],
    ids=[
        "empty",
        "negative",
        "plus",
        "decimal",
        "suffix",
        "two-spaces",
        "trailing-space",
        "exponent",
        "fullwidth-digit",
        "arabic-indic-digit",
    ],
)
def test_retry_that_is_not_ascii_digits_is_ignored(value: bytes) -> None:
    assert decode(b"retry: 10\nretry: " + value + b"\ndata: a\n\n") == [SseEvent(data="a", retry=10)]


def test_comments_and_pings_between_and_inside_events_are_ignored() -> None:
    blob = b": ping\n\n:\ndata: a\n: inside\ndata: b\n\n: ping\n\n:data: not data\n\ndata: c\n\n"
    assert decode(blob) == [SseEvent(data="a\nb"), SseEvent(data="c")]


def test_event_block_without_data_is_not_dispatched() -> None:
    assert decode(b"event: ping\n\nevent: x\nretry: 5\nid: 1\n\ndata: a\n\n") == [SseEvent(data="a", id="1")]


def test_unknown_field_is_ignored() -> None:
    assert decode(b"foo: bar\ndata: a\nDATA: b\nData: c\nfoo\n\n") == [SseEvent(data="a")]


def test_field_line_without_colon_has_an_empty_value() -> None:
    assert decode(b"data: a\ndata\nevent: e\nevent\n\n") == [SseEvent(data="a\n", event="message")]


def test_field_name_is_not_trimmed() -> None:
    assert decode(b" data: a\ndata : b\ndata: c\n\n") == [SseEvent(data="c")]


def test_several_events_in_one_chunk() -> None:
    decoder = SseDecoder()
    assert decoder.feed(b'data: {"a":1}\n\ndata: {"a":2}\n\nevent: end\ndata: [DONE]\n\n') == [
        SseEvent(data='{"a":1}'),
        SseEvent(data='{"a":2}'),
        SseEvent(event="end", data="[DONE]"),
    ]


def test_line_split_across_many_chunks_is_joined() -> None:
    decoder = SseDecoder()
    assert [decoder.feed(piece) for piece in (b"da", b'ta: {"a', b'": ', b"1}", b"\n", b"\n")] == [
        [],
        [],
        [],
        [],
        [],
        [SseEvent(data='{"a": 1}')],
    ]


# --- byte order mark -------------------------------------------------------------------------------------


def test_leading_bom_is_stripped_and_first_event_kept() -> None:
    assert decode(BOM + b"data: first\n\ndata: second\n\n") == [
        SseEvent(data="first"),
        SseEvent(data="second"),
    ]


@pytest.mark.parametrize("cut", [1, 2, 3, 4])
def test_leading_bom_split_across_chunks_keeps_first_event(cut: int) -> None:
    blob = BOM + b"data: first\n\n"
    assert decode(blob[:cut], blob[cut:]) == [SseEvent(data="first")]


def test_leading_bom_fed_byte_by_byte_keeps_first_event() -> None:
    assert decode(*bytewise(BOM + b"data: first\n\n")) == [SseEvent(data="first")]


def test_leading_bom_after_empty_chunks() -> None:
    assert decode(b"", BOM[:1], b"", BOM[1:], b"data: x\n\n") == [SseEvent(data="x")]


def test_only_one_leading_bom_is_stripped() -> None:
    # The second one becomes part of the field name "\ufeffdata", an unknown field.
    assert decode(BOM + BOM + b"data: x\n\ndata: y\n\n") == [SseEvent(data="y")]


def test_bom_later_in_the_stream_is_data() -> None:
    assert decode(b"data: a\n\n", b"data: " + BOM + b"b\n\n") == [
        SseEvent(data="a"),
        SseEvent(data="\ufeffb"),
    ]


def test_short_first_chunk_that_is_not_a_bom_is_kept() -> None:
    assert decode(b"d", b"ata: x\n\n") == [SseEvent(data="x")]
    assert decode(b"\n", b"data: x\n\n") == [SseEvent(data="x")]


def test_bom_prefix_followed_by_other_bytes_is_invalid_utf8() -> None:
    decoder = SseDecoder()
    assert decoder.feed(b"\xef\xbb") == []
    with pytest.raises(SseError, match="not valid UTF-8"):
        decoder.feed(b"data: x\n")


# --- UTF-8 -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["中文字符", "é", "😀👍🏽", "Ελληνικά"], ids=["cjk", "latin", "emoji", "greek"]
)
def test_multibyte_utf8_split_at_every_byte_position(text: str) -> None:
    blob = b"data: " + text.encode() + b"\n\n"
    for cut in range(len(blob) + 1):
        assert decode(blob[:cut], blob[cut:]) == [SseEvent(data=text)], cut
    assert decode(*bytewise(blob)) == [SseEvent(data=text)]


def test_invalid_utf8_in_data_is_an_sse_error() -> None:
    decoder = SseDecoder()
    with pytest.raises(SseError) as caught:
        decoder.feed(b"data: ok\xff\n\n")
    assert type(caught.value) is SseError
    assert str(caught.value) == (
        "the event stream is not valid UTF-8: invalid start byte at byte 8 of a line (9 bytes); "
        "around it: b'data: ok\\xff'"
    )
    assert isinstance(caught.value.__cause__, UnicodeDecodeError)


def test_invalid_utf8_waits_for_the_line_to_complete() -> None:
    decoder = SseDecoder()
    assert decoder.feed(b"data: \xe4\xb8") == []
    with pytest.raises(SseError, match=r"invalid continuation byte at byte 6 of a line \(10 bytes\)"):
        decoder.feed(b"xx\n")


def test_invalid_utf8_in_a_comment_is_an_sse_error() -> None:
    with pytest.raises(SseError, match="not valid UTF-8"):
        SseDecoder().feed(b": \xc3\x28\n")


def test_invalid_utf8_message_shows_only_bytes_around_the_error() -> None:
    line = b"data: " + b"a" * 100 + b"\xff" + b"b" * 100
    shown = b"a" * 20 + b"\xff" + b"b" * 19
    with pytest.raises(SseError) as caught:
        SseDecoder().feed(line + b"\n")
    assert str(caught.value) == (
        "the event stream is not valid UTF-8: invalid start byte at byte 106 of a line (207 bytes); "
        f"around it: {shown!r}"
    )


def test_truncated_character_in_a_cut_last_line_is_discarded_not_an_error() -> None:
    assert decode(b"data: a\n\ndata: \xe4\xb8") == [SseEvent(data="a")]


def test_decoder_keeps_failing_after_an_error() -> None:
    decoder = SseDecoder()
    with pytest.raises(SseError) as first:
        decoder.feed(b"data: \xff\n")
    with pytest.raises(SseError) as again:
        decoder.feed(b"data: fine\n\n")
    assert again.value is first.value
    with pytest.raises(SseError) as at_finish:
        decoder.finish()
    assert at_finish.value is first.value


# --- the bound on one event ------------------------------------------------------------------------------


def test_event_of_exactly_the_limit_is_accepted() -> None:
    # The size is the data lines as sent: 10 + 10 bytes.
    assert decode(b"data: 1234\ndata: abcd\n\n", max_event_size=20) == [SseEvent(data="1234\nabcd")]


def test_many_data_lines_past_the_limit_raise_event_too_large() -> None:
    decoder = SseDecoder(max_event_size=20)
    assert decoder.feed(b"data: 1234\n") == []
    assert decoder.feed(b"data: abcd\n") == []
    with pytest.raises(EventTooLargeError) as caught:
        decoder.feed(b"data: x\n")
    assert caught.value.limit == 20
    assert str(caught.value) == "a server-sent event exceeded 20 bytes (raise max_event_size to allow it)"


def test_many_data_lines_in_one_chunk_up_to_the_limit_are_accepted() -> None:
    assert decode(b"data: 1234\n" * 10 + b"\n", max_event_size=100) == [
        SseEvent(data="\n".join(["1234"] * 10))
    ]


def test_many_data_lines_in_one_chunk_past_the_limit_raise() -> None:
    with pytest.raises(EventTooLargeError):
        SseDecoder(max_event_size=99).feed(b"data: 1234\n" * 10 + b"\n")  # 10 lines of 10 bytes


def test_partial_line_counts_with_the_data_already_gathered() -> None:
    decoder = SseDecoder(max_event_size=20)
    assert decoder.feed(b"data: 1234\n") == []
    assert decoder.feed(b"data: abcd") == []  # 10 + 10 held
    with pytest.raises(EventTooLargeError):
        decoder.feed(b"e")  # 10 + 11, before the line is complete


def test_endless_line_raises_as_soon_as_the_limit_is_passed() -> None:
    decoder = SseDecoder(max_event_size=1000)
    piece = b"data: " + b"x" * 94
    fed = 0
    with pytest.raises(EventTooLargeError):
        while fed < 100:
            decoder.feed(piece)
            fed += 1
    assert fed == 10  # 1000 bytes held are fine; the 11th piece (1100 bytes) raises


def test_endless_line_memory_stays_bounded_in_the_splitter() -> None:
    splitter = LineSplitter(max_line_size=1000)
    held: list[int] = []
    with pytest.raises(EventTooLargeError):
        for _ in range(100):
            splitter.feed(b"y" * 64)
            held.append(splitter.pending_size)
    assert held == [64 * n for n in range(1, 16)]
    assert splitter.pending_size == 0


def test_comments_and_other_fields_do_not_count_toward_the_limit() -> None:
    blob = b": keep-alive comment\nevent: some-name\nid: 12345678\n" * 10 + b"data: 12345678901234\n\n"
    assert decode(blob, max_event_size=20) == [
        SseEvent(event="some-name", id="12345678", data="12345678901234")
    ]


def test_one_non_data_line_longer_than_the_limit_raises() -> None:
    with pytest.raises(EventTooLargeError):
        decode(b": " + b"c" * 30 + b"\n", max_event_size=20)


def test_the_limit_is_per_event() -> None:
    blob = b"data: 1234567890\n\n" * 50
    assert decode(blob, max_event_size=16) == [SseEvent(data="1234567890")] * 50


# --- finish ----------------------------------------------------------------------------------------------


def test_finish_dispatches_a_pending_event_whose_last_line_was_terminated() -> None:
    decoder = SseDecoder()
    assert decoder.feed(b'data: {"a":1}\n\ndata: [DONE]\n') == [SseEvent(data='{"a":1}')]
    assert decoder.finish() == [SseEvent(data="[DONE]")]


@pytest.mark.parametrize("eol", [b"\n", b"\r", b"\r\n"], ids=["LF", "CR", "CRLF"])
def test_finish_dispatch_works_with_every_line_end(eol: bytes) -> None:
    assert decode(b"id: 3" + eol + b"event: end" + eol + b"data: [DONE]" + eol) == [
        SseEvent(data="[DONE]", event="end", id="3")
    ]


def test_finish_discards_a_cut_partial_line() -> None:
    decoder = SseDecoder()
    assert decoder.feed(b'data: {"a":1}\n\ndata: {"a":') == [SseEvent(data='{"a":1}')]
    assert decoder.finish() == []


def test_finish_discards_the_whole_event_of_a_cut_partial_line() -> None:
    assert decode(b"data: complete line\ndata: cut li") == []


def test_finish_after_a_blank_line_dispatches_nothing_more() -> None:
    decoder = SseDecoder()
    assert decoder.feed(b"data: a\n\n") == [SseEvent(data="a")]
    assert decoder.finish() == []


def test_finish_with_a_pending_block_without_data_dispatches_nothing() -> None:
    assert decode(b"data: a\n\nevent: x\nid: 1\n") == [SseEvent(data="a")]


def test_finish_of_an_empty_body_or_a_lone_bom() -> None:
    assert decode() == []
    assert decode(BOM) == []
    assert decode(BOM[:2]) == []


def test_decoder_starts_afresh_after_finish() -> None:
    decoder = SseDecoder()
    assert decoder.feed(b"id: 1\ndata: a\n\ndata: cut") == [SseEvent(data="a", id="1")]
    assert decoder.finish() == []
    assert decoder.feed(BOM + b"data: b\n\n") == [SseEvent(data="b")]


# --- the line splitter on its own ------------------------------------------------------------------------


def test_splitter_returns_complete_lines_and_keeps_the_rest() -> None:
    splitter = LineSplitter()
    assert splitter.feed(b"a\r") == [b"a"]
    assert splitter.feed(b"\nb\r\n\nc") == [b"b", b""]
    assert splitter.pending_size == 1
    assert splitter.feed(b"d") == []
    assert splitter.feed(b"e\rf") == [b"cde"]
    assert splitter.finish() == b"f"
    assert splitter.finish() is None


def test_splitter_finish_after_a_line_end_is_none() -> None:
    splitter = LineSplitter()
    assert splitter.feed(b"a\r") == [b"a"]
    assert splitter.finish() is None
    assert splitter.feed(b"\nb\n") == [b"", b"b"]  # afresh: this LF is a line end of its own


# --- properties: the split of the bytes never matters ----------------------------------------------------


@dataclass(frozen=True)
class Block:
    """One event as a server writes it, with optional comments before it."""

    data: tuple[str, ...]
    event: str | None
    id: str | None
    retry: int | None
    comments: tuple[str, ...]


_ODD = "\x00\x0b\x0c\x1c\x85\u2028\ufeff :é中😀"
_line_text = st.text(
    alphabet=st.one_of(
        st.sampled_from(_ODD),
        st.characters(codec="utf-8", exclude_characters="\r\n"),
    ),
    max_size=20,
)
_name_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="\r\n\x00"),
    min_size=1,
    max_size=10,
)
_blocks = st.lists(
    st.builds(
        Block,
        data=st.lists(_line_text, min_size=1, max_size=4).map(tuple),
        event=st.none() | _name_text,
        id=st.none() | _name_text,
        retry=st.none() | st.integers(0, 10**6),
        comments=st.lists(_line_text, max_size=2).map(tuple),
    ),
    max_size=6,
)


@dataclass(frozen=True)
class Stream:
    blob: bytes
    events: tuple[SseEvent, ...]


def _encode(blocks: Sequence[Block], eol: bytes, bom: bool, final_blank: bool) -> Stream:
    lines: list[str] = []
    events: list[SseEvent] = []
    last_id: str | None = None
    for n, block in enumerate(blocks):
        lines.extend(":" + comment for comment in block.comments)
        if block.event is not None:
            lines.append("event: " + block.event)
        if block.id is not None:
            lines.append("id: " + block.id)
            last_id = block.id
        if block.retry is not None:
            lines.append(f"retry: {block.retry}")
        lines.extend("data: " + line for line in block.data)
        if final_blank or n < len(blocks) - 1:
            lines.append("")
        events.append(
            SseEvent(
                data="\n".join(block.data), event=block.event or "message", id=last_id, retry=block.retry
            )
        )
    blob = b"".join(line.encode() + eol for line in lines)
    return Stream((BOM if bom else b"") + blob, tuple(events))


_streams = st.builds(
    _encode,
    _blocks,
    eol=st.sampled_from([b"\n", b"\r", b"\r\n"]),
    bom=st.booleans(),
    final_blank=st.booleans(),
)


def _pieces(blob: bytes, cuts: Iterable[int]) -> list[bytes]:
    points = sorted({0, len(blob), *cuts})
    return [blob[a:b] for a, b in zip(points, points[1:], strict=False)]


@settings(max_examples=200, deadline=None)
@given(stream=_streams, data=st.data())
def test_property_any_split_decodes_like_the_whole(stream: Stream, data: st.DataObject) -> None:
    cuts = data.draw(st.lists(st.integers(0, len(stream.blob)), max_size=12), label="cuts")
    assert decode(stream.blob) == list(stream.events)
    assert decode(*_pieces(stream.blob, cuts)) == list(stream.events)


@settings(max_examples=200, deadline=None)
@given(stream=_streams)
def test_property_byte_at_a_time_decodes_like_the_whole(stream: Stream) -> None:
    assert decode(*bytewise(stream.blob)) == decode(stream.blob) == list(stream.events)


@settings(max_examples=200, deadline=None)
@given(stream=_streams, data=st.data())
def test_property_crlf_split_between_cr_and_lf(stream: Stream, data: st.DataObject) -> None:
    # Cut at every CR that a LF follows, and at random places besides.
    blob = stream.blob
    at_crlf = [i + 1 for i in range(len(blob) - 1) if blob[i : i + 2] == b"\r\n"]
    cuts = data.draw(st.lists(st.integers(0, len(blob)), max_size=4), label="cuts")
    assert decode(*_pieces(blob, [*at_crlf, *cuts])) == list(stream.events)


def test_events_before_an_oversized_line_in_the_same_piece_are_delivered_first() -> None:
    decoder = SseDecoder(max_event_size=64)
    assert decoder.feed(b"data: a\n\ndata: " + b"x" * 100) == [SseEvent(data="a")]
    with pytest.raises(EventTooLargeError):
        decoder.feed(b"more")


def test_an_oversized_line_just_before_the_end_is_still_an_error() -> None:
    decoder = SseDecoder(max_event_size=64)
    assert decoder.feed(b"data: a\n\ndata: " + b"x" * 100) == [SseEvent(data="a")]
    with pytest.raises(EventTooLargeError):
        decoder.finish()


def test_events_before_invalid_utf8_in_the_same_piece_are_delivered_first() -> None:
    decoder = SseDecoder()
    assert decoder.feed(b"data: a\n\ndata: \xff\n\n") == [SseEvent(data="a")]
    with pytest.raises(SseError):
        decoder.finish()


# --- sizes, at the bound and across pieces -----------------------------------------------------------


def too_large(limit: int) -> str:
    return f"a server-sent event exceeded {limit} bytes (raise max_event_size to allow it)"


@pytest.mark.parametrize("line", [b"data: a", b"data:ab"], ids=["data: a", "data:ab (the general rules)"])
def test_an_event_of_many_data_lines_is_bounded_by_their_sum(line: bytes) -> None:
    decoder = SseDecoder(max_event_size=20)
    assert decoder.feed(line + b"\n" + line + b"\n") == []  # 7 + 7 bytes of lines: within 20
    with pytest.raises(EventTooLargeError) as raised:
        decoder.feed(line + b"\n")  # 21
    assert (raised.value.limit, str(raised.value)) == (20, too_large(20))


def test_pending_bytes_and_data_lines_together_are_bounded() -> None:
    decoder = SseDecoder(max_event_size=12)
    with pytest.raises(EventTooLargeError) as raised:
        decoder.feed(b"data: ab\ndata: c")  # 8 bytes of lines and 7 pending: 15
    assert (raised.value.limit, str(raised.value)) == (12, too_large(12))


def test_a_line_too_long_after_whole_events_delivers_them_first_then_fails_on() -> None:
    decoder = SseDecoder(max_event_size=10)
    assert decoder.feed(b"data: a\n\n" + b"x" * 11) == [SseEvent(data="a")]
    with pytest.raises(EventTooLargeError) as raised:
        decoder.feed(b"\n")
    assert (raised.value.limit, str(raised.value)) == (10, too_large(10))
    with pytest.raises(EventTooLargeError):
        decoder.finish()


def test_a_failed_finish_leaves_the_decoder_failed() -> None:
    decoder = SseDecoder(max_event_size=10)
    assert decoder.feed(b"data: a\n\n" + b"x" * 11) == [SseEvent(data="a")]
    with pytest.raises(EventTooLargeError) as first:
        decoder.finish()
    with pytest.raises(EventTooLargeError) as again:
        decoder.feed(b"data: b\n\n")
    assert again.value is first.value


@pytest.mark.parametrize("fresh", [True, False], ids=["new", "after finish"])
def test_a_line_of_exactly_the_bound_is_accepted(fresh: bool) -> None:
    decoder = SseDecoder(max_event_size=10)
    if not fresh:
        assert decoder.feed(b"data: 1234\n\n") == [SseEvent(data="1234")]
        assert decoder.finish() == []
    assert decoder.feed(b"data: 1234\n\n") == [SseEvent(data="1234")]  # 10 bytes: at the bound, not past it


def test_a_line_completed_from_pieces_leaves_no_count_behind() -> None:
    splitter = LineSplitter(max_line_size=5)
    assert splitter.feed(b"abc") == []
    assert splitter.feed(b"de\nfghij") == [b"abcde"]  # fghij pending: exactly the bound
    assert splitter.feed(b"\n") == [b"fghij"]


def test_the_incomplete_last_line_is_returned_whole_at_finish_and_the_splitter_starts_afresh() -> None:
    splitter = LineSplitter(max_line_size=10)
    assert splitter.feed(b"ab") == []
    assert splitter.feed(b"cd") == []
    assert splitter.finish() == b"abcd"
    assert splitter.feed(b"\n") == [b""]  # not the LF of a CRLF: a line of its own
    assert splitter.feed(b"0123456789") == []  # the count started afresh: 10 is within 10
    assert splitter.finish() == b"0123456789"
    assert splitter.finish() is None


# --- what one piece leaves held for the next (the fast path may only cut between events) -------------------


@pytest.mark.parametrize(
    ("first", "then", "expected"),
    [
        (b"data: a", b"data: b\n\n", SseEvent(data="adata: b")),  # an incomplete line
        (b"data: a\n", b"data: b\n\n", SseEvent(data="a\nb")),  # a data line
        (b"event: x\n", b"data: y\n\n", SseEvent(data="y", event="x")),  # an event type
        (b"retry: 5\n", b"data: y\n\n", SseEvent(data="y", retry=5)),  # a retry
    ],
)
def test_what_a_piece_leaves_held_belongs_to_the_event_the_next_piece_ends(
    first: bytes, then: bytes, expected: SseEvent
) -> None:
    decoder = SseDecoder()
    assert decoder.feed(first) == []
    assert decoder.feed(then) == [expected]


def test_a_cr_before_a_blank_lf_ends_the_line_there() -> None:
    assert decode(b"data: a\r\n\n") == [SseEvent(data="a")]


def test_a_byte_order_mark_in_a_later_piece_is_data_not_stripped() -> None:
    # Only the body's first bytes may be a byte order mark; later, "\ufeffdata" is an unknown field.
    assert decode(b"data: a\n\n", BOM + b"data: b\n\n") == [SseEvent(data="a")]


def test_each_event_of_one_piece_has_the_whole_bound() -> None:
    second = b"data: " + b"x" * 14  # 20 bytes: exactly the bound
    assert decode(b"data: a\r\n\r\n" + second + b"\r\n\r\n", max_event_size=20) == [
        SseEvent(data="a"),
        SseEvent(data="x" * 14),
    ]


def test_after_finish_the_decoder_starts_afresh_with_its_bounds() -> None:
    decoder = SseDecoder(max_event_size=50)
    assert decoder.feed(b"data: a\n\n") == [SseEvent(data="a")]
    assert decoder.finish() == []
    assert decoder.feed(b"data: " + b"x" * 44) == []  # 50 bytes held: exactly the bound
    assert decoder.feed(b"\n") == []
    assert decoder.feed(b"\n") == [SseEvent(data="x" * 44)]
    assert decoder.feed(b"data: b\n") == []
    assert decoder.feed(b"data: c\n\n") == [SseEvent(data="b\nc")]
    assert decoder.finish() == []
    with pytest.raises(EventTooLargeError) as raised:
        decoder.feed(b"data: " + b"y" * 45)
    assert raised.value.limit == 50


def test_a_line_too_long_after_lines_of_the_same_piece_is_raised_by_finish_and_kept() -> None:
    decoder = SseDecoder(max_event_size=10)
    assert decoder.feed(b"data: a\r\n\r\n" + b"y" * 20) == [SseEvent(data="a")]
    with pytest.raises(EventTooLargeError) as raised:
        decoder.finish()
    assert decoder.error is raised.value
    with pytest.raises(EventTooLargeError) as again:
        decoder.feed(b"data: b\n\n")
    assert again.value is raised.value


def test_the_splitter_raises_a_too_long_line_on_the_call_after_the_lines_before_it() -> None:
    splitter = LineSplitter(max_line_size=5)
    assert splitter.feed(b"ab\ncdefghij") == [b"ab"]
    with pytest.raises(EventTooLargeError) as raised:
        splitter.feed(b"\n")
    assert raised.value.limit == 5


def test_the_splitter_drops_only_the_lf_right_after_a_cr() -> None:
    splitter = LineSplitter()
    assert splitter.feed(b"a\r") == [b"a"]
    assert splitter.feed(b"\n") == []
    assert splitter.feed(b"\n") == [b""]


def test_sse_source_is_named_here_too_and_other_names_are_not() -> None:
    import rxllm.transport.sse as sse
    from rxllm.transport._source import sse_source

    assert sse.sse_source is sse_source
    with pytest.raises(AttributeError) as raised:
        _ = sse.no_such_name
    assert str(raised.value) == "module 'rxllm.transport.sse' has no attribute 'no_such_name'"


@pytest.mark.parametrize(
    ("blob", "expected"),
    [
        (b"DATA: x\n\n", []),  # field names are case-sensitive
        (b"EVENT: x\ndata: y\n\n", [SseEvent(data="y")]),
        (b"event: x\nDATA: y\n\n", []),
        (b"event: x\nid: 1\n\n", []),  # an event with no data line is not dispatched
        (b"event: \ndata: y\n\n", [SseEvent(data="y")]),  # an empty type is "message"
        (b"event: a\x0bdata: y\n\n", []),  # a vertical tab ends no line: one event line
        (b"event: x\nXdata: y\n\n", []),  # an unknown field after the type
    ],
)
def test_blocks_of_the_usual_shape_but_other_fields_follow_the_general_rules(
    blob: bytes, expected: list[SseEvent]
) -> None:
    assert decode(blob) == expected
    assert decode(*bytewise(blob)) == expected


def test_the_lf_of_a_crlf_split_from_its_cr_then_a_blank_line_ends_the_event() -> None:
    assert decode(b"data: a\r", b"\n\ndata: b\n\n") == [SseEvent(data="a"), SseEvent(data="b")]
