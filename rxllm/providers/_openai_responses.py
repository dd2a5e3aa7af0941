"""The OpenAI Responses API stream dialect (semantic events, ``POST /v1/responses``).

Every event names itself in its ``type`` (the SSE ``event:`` name says the same);
there is no ``[DONE]``: ``response.completed``, ``response.incomplete`` or
``response.failed`` ends the body, and a top-level ``error`` event may too::

    event: response.output_item.added
    data: {"type":"response.output_item.added","output_index":0,
           "item":{"id":"fc_1","type":"function_call","call_id":"call_1","name":"add","arguments":""}}
    event: response.function_call_arguments.delta
    data: {"type":"response.function_call_arguments.delta","item_id":"fc_1","output_index":0,
           "delta":"{\\"a\\":1}"}
    event: response.output_item.done
    data: {"type":"response.output_item.done","output_index":0,"item":{...,"arguments":"{\\"a\\":1}"}}
    event: response.completed
    data: {"type":"response.completed","response":{"id":"resp_1","status":"completed","usage":{...}}}

What each event gives:

* ``response.output_text.delta`` -> ``TextDelta``; ``response.refusal.delta`` ->
  ``TextDelta`` too, and the turn's finish reason becomes ``"refusal"``.
* A function call streams as ``ToolCallFragment`` pieces keyed by the item
  (``index`` = ``output_index``, ``id`` = the item id, ``call_id`` = the id that
  pairs it with its output): the name from ``output_item.added``, then each
  ``function_call_arguments.delta``; its ``output_item.done`` is a last fragment
  with ``end``, so ``accumulate_tool_calls`` completes the call there (and parses
  its arguments: the dialect only passes the pieces on).
* ``response.reasoning_summary_text.delta`` (and ``response.reasoning_text.delta``,
  raw reasoning from open-weight models) -> ``ReasoningDelta`` with the item id;
  the reasoning item's ``output_item.done`` -> a ``Reasoning`` with the same id and
  its ``encrypted_content``, which replaces the deltas. Summary parts are joined
  with a blank line, in the deltas as in the block.
* ``response.completed`` -> ``Final`` with usage (``None`` when the response has none),
  response id and model; finish reason
  ``"completed"`` (``"refusal"`` after a refusal). ``response.incomplete`` -> ``Final``
  with ``"incomplete:<reason>"`` (``"incomplete:max_output_tokens"``): a real end.
  ``response.failed`` and ``error`` -> ``ProviderError`` with the provider's message
  and code (and, from ``response.failed``, the usage it reported).
* Every other event (``response.created``, ``content_part.added``, the ``.done``
  echoes, hosted tools...) carries nothing for the turn; an event type this module
  does not know is skipped with a debug log.
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import uuid4

import msgspec

from rxllm import _log
from rxllm.errors import ChunkDecodeError, ProviderError
from rxllm.events import (
    ChunkEvent,
    Final,
    Reasoning,
    ReasoningDelta,
    TextDelta,
    ToolCallFragment,
    Usage,
)

__all__ = ["OpenAIResponsesDialect", "OpenAIResponsesParser"]

_SUMMARY_SEPARATOR = "\n\n"


class _Text(msgspec.Struct, gc=False):
    text: str | None = None


class _Item(msgspec.Struct, gc=False):
    type: str | None = None
    id: str | None = None
    call_id: str | None = None
    name: str | None = None
    arguments: str | None = None
    summary: list[_Text] | None = None
    content: list[_Text] | None = None
    encrypted_content: str | None = None


class _InputDetails(msgspec.Struct, gc=False):
    cached_tokens: int | None = None


class _OutputDetails(msgspec.Struct, gc=False):
    reasoning_tokens: int | None = None


class _Usage(msgspec.Struct, gc=False):
    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    input_tokens_details: _InputDetails | None = None
    output_tokens_details: _OutputDetails | None = None


class _Error(msgspec.Struct, gc=False):
    message: str | None = None
    type: str | None = None
    code: str | int | None = None


class _Incomplete(msgspec.Struct, gc=False):
    reason: str | None = None


class _Response(msgspec.Struct, gc=False):
    id: str | None = None
    model: str | None = None
    status: str | None = None
    usage: _Usage | None = None
    error: _Error | None = None
    incomplete_details: _Incomplete | None = None


class _Event(msgspec.Struct, gc=False):
    type: str = ""
    delta: str | None = None
    item_id: str | None = None
    output_index: int | None = None
    summary_index: int | None = None
    item: _Item | None = None
    response: _Response | None = None
    # the top-level `error` event
    message: str | None = None
    code: str | int | None = None
    error: _Error | None = None


class _Head(msgspec.Struct, gc=False):
    type: str = ""


_decoder = msgspec.json.Decoder(_Event)
_head_decoder = msgspec.json.Decoder(_Head)
_NOTHING: tuple[ChunkEvent, ...] = ()

_TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed", "error"})
_READ = frozenset(
    {
        "response.output_text.delta",
        "response.refusal.delta",
        "response.function_call_arguments.delta",
        "response.reasoning_summary_text.delta",
        "response.reasoning_text.delta",
        "response.output_item.added",
        "response.output_item.done",
    }
    | _TERMINAL
)
# Events that repeat what the deltas said, or announce what comes next: nothing for the turn.
_SILENT = frozenset(
    {
        "response.created",
        "response.in_progress",
        "response.queued",
        "response.content_part.added",
        "response.content_part.done",
        "response.output_text.done",
        "response.output_text.annotation.added",
        "response.refusal.done",
        "response.function_call_arguments.done",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_part.done",
        "response.reasoning_summary_text.done",
        "response.reasoning_text.done",
    }
)


class OpenAIResponsesParser:
    """Decoding state of one Responses stream (see ``rxllm.typing.ChunkParser``)."""

    __slots__ = ("done", "finished", "_argued", "_call_ids", "_refused", "_summary_parts")

    def __init__(self) -> None:
        self.done = False
        self.finished = False
        self._refused = False
        self._call_ids: dict[int, str] = {}
        self._argued: set[str] = set()  # calls whose arguments came as fragments
        self._summary_parts: dict[str, int] = {}

    def feed(self, event: str, data: str) -> Sequence[ChunkEvent]:
        """Decode one event; its ``type`` field (equal to the ``event:`` name) says what it is."""
        try:
            chunk = _decoder.decode(data)
        except msgspec.DecodeError as error:
            if _readable_type(data) in _READ:
                raise ChunkDecodeError(str(error), data) from None
            # An event this dialect does not read may carry fields of another shape (a
            # `delta` object, say): it is skipped, not a failure of the stream.
            _log.log("DEBUG", f"responses: skipping an event of another shape: {data[:200]}")
            return _NOTHING
        kind = chunk.type
        if kind == "response.output_text.delta":
            return [TextDelta(text=chunk.delta)] if chunk.delta else _NOTHING
        if kind == "response.refusal.delta":
            self._refused = True
            return [TextDelta(text=chunk.delta)] if chunk.delta else _NOTHING
        if kind == "response.function_call_arguments.delta":
            return self._arguments(chunk)
        if kind in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
            return self._reasoning_delta(chunk)
        if kind == "response.output_item.added":
            return self._item_added(chunk)
        if kind == "response.output_item.done":
            return self._item_done(chunk)
        if kind in _TERMINAL:
            return self._terminal(kind, chunk)
        if kind not in _SILENT:
            _log.log("DEBUG", f"responses: skipping unknown event type {kind or event!r}")
        return _NOTHING

    def _item_added(self, chunk: _Event) -> Sequence[ChunkEvent]:
        item = chunk.item
        if item is None or item.type != "function_call":
            return _NOTHING
        id = _call_item_id(item) or _minted_id()
        if chunk.output_index is not None:
            self._call_ids[chunk.output_index] = id
        if item.arguments:
            self._argued.add(id)
        return [
            ToolCallFragment(
                index=chunk.output_index,
                id=id,
                name=item.name or None,
                arguments=item.arguments or "",
                call_id=item.call_id or None,
            )
        ]

    def _arguments(self, chunk: _Event) -> Sequence[ChunkEvent]:
        if not chunk.delta:
            return _NOTHING
        id = chunk.item_id or (
            self._call_ids.get(chunk.output_index) if chunk.output_index is not None else None
        )
        if id is not None:
            self._argued.add(id)
        return [ToolCallFragment(index=chunk.output_index, id=id, arguments=chunk.delta)]

    def _reasoning_delta(self, chunk: _Event) -> Sequence[ChunkEvent]:
        if not chunk.delta:
            return _NOTHING
        text = chunk.delta
        item_id = chunk.item_id
        if chunk.summary_index is not None and item_id is not None:
            # A reasoning summary comes in parts (`summary_index` 0, 1...); the block joins them
            # with a blank line, so the deltas carry that separator too.
            seen = self._summary_parts.get(item_id)
            if seen is not None and chunk.summary_index != seen:
                text = _SUMMARY_SEPARATOR + text
            self._summary_parts[item_id] = chunk.summary_index
        return [ReasoningDelta(text=text, id=item_id)]

    def _item_done(self, chunk: _Event) -> Sequence[ChunkEvent]:
        item = chunk.item
        if item is None:
            return _NOTHING
        if item.type == "function_call":
            known = self._call_ids.get(chunk.output_index) if chunk.output_index is not None else None
            id = _call_item_id(item) or known or _minted_id()
            # The call ends here. Its arguments came as fragments; only a server that streamed none
            # has them on this item alone, and then they are this last fragment's.
            arguments = "" if id in self._argued else item.arguments or ""
            return [
                ToolCallFragment(
                    index=chunk.output_index,
                    id=id,
                    name=item.name or None,
                    arguments=arguments,
                    call_id=item.call_id or None,
                    end=True,
                )
            ]
        if item.type == "reasoning":
            parts = item.summary or item.content or []
            text = _SUMMARY_SEPARATOR.join(part.text or "" for part in parts)
            return [Reasoning(text=text, id=item.id, encrypted_content=item.encrypted_content)]
        return _NOTHING

    def _terminal(self, kind: str, chunk: _Event) -> Sequence[ChunkEvent]:
        self.done = self.finished = True
        response = chunk.response
        if kind == "error":
            # Documented flat (`code`, `message`); some servers nest them in an `error` object.
            nested = chunk.error
            message = chunk.message or (nested.message if nested is not None else None)
            code = chunk.code if chunk.code is not None else (nested.code if nested is not None else None)
            raise ProviderError.create(
                message or "the server sent an error without a message",
                type=nested.type if nested is not None else None,
                code=str(code) if code is not None else None,
            )
        if kind == "response.failed":
            failure = response.error if response is not None else None
            raise ProviderError.create(
                (failure.message if failure is not None else None) or "the response failed without a message",
                type=failure.type if failure is not None else None,
                code=str(failure.code) if failure is not None and failure.code is not None else None,
                usage=_usage(response.usage) if response is not None and response.usage is not None else None,
            )
        if kind == "response.incomplete":
            details = response.incomplete_details if response is not None else None
            reason = (details.reason if details is not None else None) or "unknown"
            finish_reason = f"incomplete:{reason}"
        else:
            finish_reason = "refusal" if self._refused else "completed"
        if response is None:
            return [Final(finish_reason=finish_reason)]
        return [
            Final(
                usage=_usage(response.usage) if response.usage is not None else None,
                finish_reason=finish_reason,
                response_id=response.id or None,
                model=response.model or None,
            )
        ]


def _readable_type(data: str) -> str:
    try:
        return _head_decoder.decode(data).type
    except msgspec.DecodeError:
        return "response.output_text.delta"  # not even JSON with a type: a broken event


def _call_item_id(item: _Item) -> str | None:
    # Responses-compatible servers that give a function call no item id: its call_id keys it.
    return item.id or item.call_id or None


def _minted_id() -> str:
    # A server that gives a call neither an item id nor a call_id: a unique one is minted, so two
    # calls of the same function never collide.
    return "fc_" + uuid4().hex


def _usage(usage: _Usage) -> Usage:
    input_tokens = usage.input_tokens or 0
    output_tokens = usage.output_tokens or 0
    input_details = usage.input_tokens_details
    output_details = usage.output_tokens_details
    return Usage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=usage.total_tokens or input_tokens + output_tokens,
        cached_input_tokens=(input_details.cached_tokens or 0) if input_details is not None else 0,
        reasoning_tokens=(output_details.reasoning_tokens or 0) if output_details is not None else 0,
    )


class OpenAIResponsesDialect:
    """The Responses API stream format.

    >>> parser = OpenAIResponsesDialect().parser()
    >>> parser.feed("response.output_text.delta", '{"type":"response.output_text.delta","delta":"Hi"}')
    [TextDelta(text='Hi')]
    """

    __slots__ = ()

    name = "openai-responses"
    end_of_turn = "response.completed, response.incomplete or response.failed"

    def parser(self) -> OpenAIResponsesParser:
        """Fresh decoding state for one stream."""
        return OpenAIResponsesParser()
