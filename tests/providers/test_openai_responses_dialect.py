"""The OpenAI Responses dialect, fed events shaped as the API documents them.

Fixtures carry the fields the server sends (``sequence_number``, ``content_index``,
``status``, ``logprobs``...), though the parser reads few of them: an unread
field must not break decoding.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

import msgspec
import pytest
from loguru import logger

import rxllm
from rxllm.errors import ChunkDecodeError, ProviderError
from rxllm.events import (
    ChunkEvent,
    Final,
    Reasoning,
    ReasoningDelta,
    TextDelta,
    ToolCall,
    ToolCallFragment,
    Usage,
)
from rxllm.operators._accumulate_tool_calls import _ToolCalls
from rxllm.providers._openai_responses import OpenAIResponsesDialect, OpenAIResponsesParser

RESP = "resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b"
MODEL = "gpt-5-mini-2025-08-07"
USAGE = {
    "input_tokens": 37,
    "input_tokens_details": {"cached_tokens": 5},
    "output_tokens": 11,
    "output_tokens_details": {"reasoning_tokens": 4},
    "total_tokens": 48,
}
USAGE_EVENT = Usage(
    input_tokens=37, output_tokens=11, total_tokens=48, cached_input_tokens=5, reasoning_tokens=4
)


def event(type: str, **fields: Any) -> str:
    """One Responses stream event's data, as JSON."""
    return msgspec.json.encode({"type": type, "sequence_number": 1, **fields}).decode()


def response(status: str, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": RESP,
        "object": "response",
        "created_at": 1741476542,
        "status": status,
        "error": None,
        "incomplete_details": None,
        "model": MODEL,
        "output": [],
        "parallel_tool_calls": True,
        "usage": USAGE,
    }
    body.update(fields)
    return body


def text_delta(text: str) -> str:
    return event(
        "response.output_text.delta",
        item_id="msg_1",
        output_index=0,
        content_index=0,
        delta=text,
        logprobs=[],
    )


def completed(**fields: Any) -> str:
    return event("response.completed", response=response("completed", **fields))


def call_item(id: str | None, call_id: str | None, name: str, arguments: str, status: str) -> dict[str, Any]:
    item: dict[str, Any] = {"type": "function_call", "status": status, "name": name, "arguments": arguments}
    if id is not None:
        item["id"] = id
    if call_id is not None:
        item["call_id"] = call_id
    return item


def calls_of(events: Iterable[ChunkEvent]) -> list[ToolCall]:
    """The calls ``accumulate_tool_calls`` makes of the events (its step class, without a stream)."""
    calls = _ToolCalls()
    return [out for event in events for out in calls.feed(event) if isinstance(out, ToolCall)]


def feed_all(lines: Iterable[str], parser: OpenAIResponsesParser | None = None) -> list[ChunkEvent]:
    parser = parser if parser is not None else OpenAIResponsesDialect().parser()
    events: list[ChunkEvent] = []
    for line in lines:
        name = msgspec.json.decode(line)["type"]
        events.extend(parser.feed(name, line))
    return events


FINAL = Final(usage=USAGE_EVENT, finish_reason="completed", response_id=RESP, model=MODEL)


@pytest.fixture
def debug_log() -> Iterator[list[str]]:
    """The messages rxllm logs at debug level while the test runs."""
    messages: list[str] = []
    rxllm.enable_logging()
    sink = logger.add(lambda message: messages.append(message.record["message"]), level="DEBUG")
    yield messages
    logger.remove(sink)
    rxllm.disable_logging()


def test_dialect_name_and_a_fresh_parser_each_time() -> None:
    dialect = OpenAIResponsesDialect()
    first, second = dialect.parser(), dialect.parser()
    first.feed("response.completed", completed())
    assert dialect.name == "openai-responses"
    assert dialect.end_of_turn == "response.completed, response.incomplete or response.failed"
    assert (first.done, first.finished) == (True, True)
    assert (second.done, second.finished) == (False, False)


def test_text_then_completed_with_usage() -> None:
    parser = OpenAIResponsesDialect().parser()
    created = event("response.created", response=response("in_progress", usage=None))
    added = event(
        "response.output_item.added",
        output_index=0,
        item={"id": "msg_1", "type": "message", "status": "in_progress", "content": [], "role": "assistant"},
    )
    part = event(
        "response.content_part.added",
        item_id="msg_1",
        output_index=0,
        content_index=0,
        part={"type": "output_text", "annotations": [], "text": ""},
    )
    events = feed_all([created, added, part, text_delta("Hi"), text_delta(" there")], parser)
    assert events == [TextDelta(text="Hi"), TextDelta(text=" there")]
    assert (parser.done, parser.finished) == (False, False)
    assert parser.feed("response.completed", completed()) == [FINAL]
    assert (parser.done, parser.finished) == (True, True)


def test_refusal_is_text_and_the_finish_reason_says_refusal() -> None:
    refusal = event(
        "response.refusal.delta", item_id="msg_1", output_index=0, content_index=0, delta="I can't help."
    )
    done = event(
        "response.refusal.done", item_id="msg_1", output_index=0, content_index=0, refusal="I can't help."
    )
    assert feed_all([refusal, done, completed()]) == [
        TextDelta(text="I can't help."),
        Final(usage=USAGE_EVENT, finish_reason="refusal", response_id=RESP, model=MODEL),
    ]


def test_function_call_fragments_keyed_by_item_then_the_whole_call() -> None:
    lines = [
        event(
            "response.output_item.added",
            output_index=1,
            item=call_item("fc_1", "call_1", "add", "", "in_progress"),
        ),
        event("response.function_call_arguments.delta", item_id="fc_1", output_index=1, delta='{"a":'),
        event("response.function_call_arguments.delta", item_id="fc_1", output_index=1, delta="2}"),
        event("response.function_call_arguments.done", item_id="fc_1", output_index=1, arguments='{"a":2}'),
        event(
            "response.output_item.done",
            output_index=1,
            item=call_item("fc_1", "call_1", "add", '{"a":2}', "completed"),
        ),
    ]
    events = feed_all(lines)
    # Fragments only, the last one ending the call: accumulate_tool_calls joins and parses.
    assert events == [
        ToolCallFragment(index=1, id="fc_1", name="add", call_id="call_1"),
        ToolCallFragment(index=1, id="fc_1", arguments='{"a":'),
        ToolCallFragment(index=1, id="fc_1", arguments="2}"),
        ToolCallFragment(index=1, id="fc_1", name="add", call_id="call_1", end=True),
    ]
    (call,) = calls_of(events)
    assert (call.id, call.call_id, call.name, call.arguments) == ("fc_1", "call_1", "add", {"a": 2})


def test_call_id_not_the_item_id_pairs_the_call_with_its_output() -> None:
    # `call_id` is what a function_call_output names; the item id (`fc_…`) is the item's own.
    done = event(
        "response.output_item.done", output_index=0, item=call_item("fc_9", "call_9", "ping", "", "completed")
    )
    (call,) = calls_of(feed_all([done]))
    assert (call.id, call.call_id, call.arguments) == ("fc_9", "call_9", {})


def test_a_call_without_an_item_id_is_keyed_by_its_call_id() -> None:
    lines = [
        event(
            "response.output_item.added",
            output_index=0,
            item=call_item(None, "call_7", "ping", "", "in_progress"),
        ),
        event("response.function_call_arguments.delta", output_index=0, delta="{}"),
        event(
            "response.output_item.done",
            output_index=0,
            item=call_item(None, "call_7", "ping", "{}", "completed"),
        ),
    ]
    events = feed_all(lines)
    assert events == [
        ToolCallFragment(index=0, id="call_7", name="ping", call_id="call_7"),
        ToolCallFragment(index=0, id="call_7", arguments="{}"),
        ToolCallFragment(index=0, id="call_7", name="ping", call_id="call_7", end=True),
    ]
    (call,) = calls_of(events)
    assert (call.id, call.call_id, call.name, call.arguments) == ("call_7", "call_7", "ping", {})


def test_a_server_that_mints_no_call_id_gets_a_unique_one_per_call() -> None:
    lines = [
        event(
            "response.output_item.added",
            output_index=0,
            item=call_item(None, None, "ping", "", "in_progress"),
        ),
        event(
            "response.output_item.added",
            output_index=1,
            item=call_item(None, None, "ping", "", "in_progress"),
        ),
        event(
            "response.output_item.done", output_index=0, item=call_item(None, None, "ping", "{}", "completed")
        ),
        event(
            "response.output_item.done", output_index=1, item=call_item(None, None, "ping", "{}", "completed")
        ),
    ]
    events = feed_all(lines)
    first, second, _end_a, _end_b = events
    call_a, call_b = calls_of(events)
    assert isinstance(first, ToolCallFragment) and isinstance(second, ToolCallFragment)
    assert first.id is not None and re.fullmatch(r"fc_[0-9a-f]{32}", first.id)
    assert first.id != second.id
    assert (call_a.id, call_a.call_id, call_b.id, call_b.call_id) == (
        first.id,
        first.id,
        second.id,
        second.id,
    )


def test_arguments_that_do_not_parse_are_kept_as_the_raw_string() -> None:
    done = event(
        "response.output_item.done",
        output_index=0,
        item=call_item("fc_1", "call_1", "f", '{"a":', "completed"),
    )
    (call,) = calls_of(feed_all([done]))
    assert call.arguments == '{"a":'


def test_reasoning_summary_deltas_then_the_completed_block_with_encrypted_content() -> None:
    # Responses sends both the deltas and the whole item: the block replaces the deltas
    # downstream (collect_response), so each carries the item id.
    item = {
        "id": "rs_1",
        "type": "reasoning",
        "summary": [
            {"type": "summary_text", "text": "**Adding** two numbers."},
            {"type": "summary_text", "text": "Done."},
        ],
        "encrypted_content": "gAAAAABo-opaque==",
    }
    lines = [
        event(
            "response.output_item.added",
            output_index=0,
            item={"id": "rs_1", "type": "reasoning", "summary": []},
        ),
        event(
            "response.reasoning_summary_part.added",
            item_id="rs_1",
            output_index=0,
            summary_index=0,
            part={"type": "summary_text", "text": ""},
        ),
        event(
            "response.reasoning_summary_text.delta",
            item_id="rs_1",
            output_index=0,
            summary_index=0,
            delta="**Adding**",
        ),
        event(
            "response.reasoning_summary_text.delta",
            item_id="rs_1",
            output_index=0,
            summary_index=0,
            delta=" two numbers.",
        ),
        event(
            "response.reasoning_summary_text.done",
            item_id="rs_1",
            output_index=0,
            summary_index=0,
            text="**Adding** two numbers.",
        ),
        event(
            "response.reasoning_summary_text.delta",
            item_id="rs_1",
            output_index=0,
            summary_index=1,
            delta="Done.",
        ),
        event("response.output_item.done", output_index=0, item=item),
    ]
    events = feed_all(lines)
    assert events == [
        ReasoningDelta(text="**Adding**", id="rs_1"),
        ReasoningDelta(text=" two numbers.", id="rs_1"),
        ReasoningDelta(text="\n\nDone.", id="rs_1"),
        Reasoning(text="**Adding** two numbers.\n\nDone.", id="rs_1", encrypted_content="gAAAAABo-opaque=="),
    ]
    deltas = "".join(e.text for e in events if isinstance(e, ReasoningDelta))
    assert deltas == events[-1].text  # type: ignore[union-attr]


def test_raw_reasoning_text_deltas_from_open_weight_models() -> None:
    item = {
        "id": "rs_2",
        "type": "reasoning",
        "summary": [],
        "content": [{"type": "reasoning_text", "text": "Hm."}],
    }
    lines = [
        event("response.reasoning_text.delta", item_id="rs_2", output_index=0, content_index=0, delta="Hm."),
        event("response.output_item.done", output_index=0, item=item),
    ]
    assert feed_all(lines) == [ReasoningDelta(text="Hm.", id="rs_2"), Reasoning(text="Hm.", id="rs_2")]


def test_response_incomplete_is_a_real_end_with_the_reason_and_usage() -> None:
    parser = OpenAIResponsesDialect().parser()
    incomplete = event(
        "response.incomplete",
        response=response("incomplete", incomplete_details={"reason": "max_output_tokens"}),
    )
    assert feed_all([text_delta("Once upon"), incomplete], parser) == [
        TextDelta(text="Once upon"),
        Final(usage=USAGE_EVENT, finish_reason="incomplete:max_output_tokens", response_id=RESP, model=MODEL),
    ]
    assert (parser.done, parser.finished) == (True, True)


def test_response_failed_is_a_provider_error_with_the_message_and_code() -> None:
    parser = OpenAIResponsesDialect().parser()
    failed = event(
        "response.failed",
        response=response("failed", error={"code": "server_error", "message": "The model crashed."}),
    )
    with pytest.raises(ProviderError) as caught:
        parser.feed("response.failed", failed)
    error = caught.value
    assert (error.status, error.message, error.code, error.type) == (
        None,
        "The model crashed.",
        "server_error",
        None,
    )
    assert error.usage == USAGE_EVENT, "the failed response's usage, which the provider bills"
    assert parser.done


def test_response_failed_without_usage_has_none() -> None:
    failed = event("response.failed", response=response("failed", usage=None, error={"message": "Down."}))
    with pytest.raises(ProviderError) as caught:
        OpenAIResponsesDialect().parser().feed("response.failed", failed)
    assert (caught.value.message, caught.value.usage) == ("Down.", None)


def test_top_level_error_event_is_a_provider_error() -> None:
    error_event = event("error", code="rate_limit_exceeded", message="Rate limit reached.", param=None)
    with pytest.raises(ProviderError) as caught:
        OpenAIResponsesDialect().parser().feed("error", error_event)
    assert (caught.value.message, caught.value.code) == ("Rate limit reached.", "rate_limit_exceeded")
    assert str(caught.value) == "error in stream: Rate limit reached. (code=rate_limit_exceeded)"


def test_error_event_with_its_fields_nested_in_an_error_object() -> None:
    nested = event(
        "error",
        error={"type": "invalid_request_error", "code": "context_length_exceeded", "message": "Too long."},
    )
    with pytest.raises(ProviderError) as caught:
        OpenAIResponsesDialect().parser().feed("error", nested)
    assert (caught.value.message, caught.value.type, caught.value.code) == (
        "Too long.",
        "invalid_request_error",
        "context_length_exceeded",
    )


def test_unknown_event_types_are_skipped_with_a_debug_log(debug_log: list[str]) -> None:
    parser = OpenAIResponsesDialect().parser()
    odd = event("response.future_feature.delta", item_id="x", output_index=0, delta={"nested": True})
    other = event("response.image_generation_call.partial_image", item_id="ig_1", partial_image_b64="AAAA")
    assert feed_all([odd, other, text_delta("ok")], parser) == [TextDelta(text="ok")]
    assert len(debug_log) == 2
    assert "response.image_generation_call.partial_image" in debug_log[1]
    assert (parser.done, parser.finished) == (False, False)


def test_documented_events_that_carry_nothing_log_nothing(debug_log: list[str]) -> None:
    lines = [
        event("response.created", response=response("in_progress", usage=None)),
        event("response.in_progress", response=response("in_progress", usage=None)),
        event("response.output_text.done", item_id="msg_1", output_index=0, content_index=0, text="Hi"),
        event("response.content_part.done", item_id="msg_1", output_index=0, content_index=0, part={}),
    ]
    assert feed_all(lines) == []
    assert debug_log == []


def test_a_broken_event_the_dialect_reads_is_a_decode_error() -> None:
    with pytest.raises(ChunkDecodeError):
        OpenAIResponsesDialect().parser().feed(
            "response.output_text.delta", '{"type":"response.output_text.delta"'
        )
    with pytest.raises(ChunkDecodeError):
        OpenAIResponsesDialect().parser().feed(
            "response.output_text.delta", '{"type":"response.output_text.delta","delta":5}'
        )


def test_usage_without_details_and_without_total() -> None:
    bare = event(
        "response.completed", response=response("completed", usage={"input_tokens": 3, "output_tokens": 2})
    )
    assert feed_all([bare]) == [
        Final(
            usage=Usage(input_tokens=3, output_tokens=2, total_tokens=5),
            finish_reason="completed",
            response_id=RESP,
            model=MODEL,
        )
    ]


def test_no_usage_at_all_is_none_not_zeros() -> None:
    assert feed_all([completed(usage=None)]) == [
        Final(usage=None, finish_reason="completed", response_id=RESP, model=MODEL)
    ]
