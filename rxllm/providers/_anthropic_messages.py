"""The Anthropic Messages stream dialect (``POST /v1/messages`` with ``"stream": true``).

A message streams as content blocks, each opened, filled and closed by index, with
the message's own events around them; ``message_stop`` ends the body::

    event: message_start
    data: {"type":"message_start","message":{"id":"msg_1","model":"claude-sonnet-4-5",
           "usage":{"input_tokens":472,"cache_read_input_tokens":0,"output_tokens":2}}}
    event: content_block_start
    data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}
    event: content_block_delta
    data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}
    event: content_block_stop
    data: {"type":"content_block_stop","index":0}
    event: message_delta
    data: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":15}}
    event: message_stop
    data: {"type":"message_stop"}

What each event gives:

* ``message_start`` -> ``Final`` with the message id, model and input usage (``None``
  while the stream has reported no usage at all).
* ``text_delta`` -> ``TextDelta``; ``thinking_delta`` -> ``ReasoningDelta``; a thinking
  block's ``signature_delta`` is kept for its ``Reasoning``.
* A ``tool_use`` block streams as ``ToolCallFragment`` pieces keyed by the block index
  and the tool-use id (the name from ``content_block_start``, then each
  ``input_json_delta``); its ``content_block_stop`` is a last fragment with ``end``:
  ``accumulate_tool_calls`` completes the call there and parses its input (the
  dialect only passes the pieces on).
* ``content_block_stop`` of a thinking block -> ``Reasoning`` with the joined text and
  the signature (no id: Anthropic gives thinking blocks none); of a
  ``redacted_thinking`` block -> ``Reasoning`` with empty text and its opaque ``data``
  as ``encrypted_content``, to be sent back as it came.
* ``message_delta`` -> ``Final`` with the stop reason, verbatim (``end_turn``,
  ``tool_use``, ``max_tokens``, ``refusal``...), and the usage so far.
* ``message_stop`` is the end marker; ``ping`` is ignored; ``error`` (``overloaded_error``
  after HTTP 200, say) -> ``ProviderError`` whose ``type`` is the provider's.

Usage: Anthropic counts cache reads and cache writes apart from ``input_tokens``;
rxllm's ``input_tokens`` is all three summed (the prompt as a whole, as OpenAI counts
it), ``cached_input_tokens`` the cache reads. ``output_tokens`` on ``message_delta`` is
cumulative, so it replaces the placeholder count of ``message_start``. Anthropic
reports no separate reasoning-token count: ``reasoning_tokens`` stays 0.
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

__all__ = ["AnthropicMessagesDialect", "AnthropicMessagesParser"]


class _Usage(msgspec.Struct, gc=False):
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    cache_creation_input_tokens: int | None = None


class _Message(msgspec.Struct, gc=False):
    id: str | None = None
    model: str | None = None
    usage: _Usage | None = None


class _Block(msgspec.Struct, gc=False):
    type: str | None = None
    id: str | None = None
    name: str | None = None
    text: str | None = None
    thinking: str | None = None
    signature: str | None = None
    data: str | None = None


class _Delta(msgspec.Struct, gc=False):
    type: str | None = None
    text: str | None = None
    partial_json: str | None = None
    thinking: str | None = None
    signature: str | None = None
    stop_reason: str | None = None


class _Error(msgspec.Struct, gc=False):
    type: str | None = None
    message: str | None = None


class _Event(msgspec.Struct, gc=False):
    type: str = ""
    index: int | None = None
    message: _Message | None = None
    content_block: _Block | None = None
    delta: _Delta | None = None
    usage: _Usage | None = None
    error: _Error | None = None
    request_id: str | None = None


_decoder = msgspec.json.Decoder(_Event)
_NOTHING: tuple[ChunkEvent, ...] = ()


class _OpenBlock:
    """A content block between its start and its stop; pieces kept in lists, joined once."""

    __slots__ = ("type", "id", "name", "parts", "signature", "data")

    def __init__(self, block: _Block) -> None:
        self.type = block.type or ""
        # Compatible servers that give a tool use no id: a unique one is minted, so two calls of
        # the same tool never collide.
        self.id = block.id or ("toolu_" + uuid4().hex if self.type == "tool_use" else None)
        self.name = block.name or None
        self.parts: list[str] = []
        self.signature: list[str] = [block.signature] if block.signature else []
        self.data = block.data


class AnthropicMessagesParser:
    """Decoding state of one Messages stream (see ``rxllm.typing.ChunkParser``)."""

    __slots__ = ("done", "finished", "_blocks", "_usage")

    def __init__(self) -> None:
        self.done = False
        self.finished = False
        self._blocks: dict[int, _OpenBlock] = {}
        self._usage: _Usage | None = None  # None until the stream reports some

    def feed(self, event: str, data: str) -> Sequence[ChunkEvent]:
        """Decode one event; its ``type`` field (equal to the ``event:`` name) says what it is."""
        try:
            chunk = _decoder.decode(data)
        except msgspec.DecodeError as failure:
            raise ChunkDecodeError(str(failure), data) from None
        kind = chunk.type
        if kind == "content_block_delta":
            return self._block_delta(chunk)
        if kind == "content_block_start":
            return self._block_start(chunk)
        if kind == "content_block_stop":
            return self._block_stop(chunk)
        if kind == "message_start":
            message = chunk.message
            if message is None:
                return _NOTHING
            if message.usage is not None:
                self._add_usage(message.usage)
            return [Final(usage=self._total(), response_id=message.id or None, model=message.model or None)]
        if kind == "message_delta":
            if chunk.usage is not None:
                self._add_usage(chunk.usage)
            stop_reason = chunk.delta.stop_reason if chunk.delta is not None else None
            return [Final(usage=self._total(), finish_reason=stop_reason or None)]
        if kind == "message_stop":
            self.done = self.finished = True
            return _NOTHING
        if kind == "ping":
            return _NOTHING
        if kind == "error":
            # Anthropic: an error after HTTP 200 (`overloaded_error`), then the connection closes
            # without message_stop; the provider's error type is kept.
            self.done = True
            error = chunk.error
            raise ProviderError.create(
                (error.message if error is not None else None)
                or "the server sent an error without a message",
                type=error.type if error is not None else None,
                request_id=chunk.request_id,
            )
        _log.log("DEBUG", f"anthropic: skipping unknown event type {kind or event!r}")
        return _NOTHING

    def _block_start(self, chunk: _Event) -> Sequence[ChunkEvent]:
        block = chunk.content_block
        if block is None or chunk.index is None:
            return _NOTHING
        open_block = self._blocks[chunk.index] = _OpenBlock(block)
        if open_block.type == "tool_use":
            return [ToolCallFragment(index=chunk.index, id=open_block.id, name=open_block.name)]
        if open_block.type == "text" and block.text:
            return [TextDelta(text=block.text)]
        if open_block.type == "thinking" and block.thinking:
            open_block.parts.append(block.thinking)
            return [ReasoningDelta(text=block.thinking)]
        if open_block.type not in ("text", "thinking", "redacted_thinking"):
            # Server tools (web search and the like) and their results: nothing for the turn.
            _log.log("DEBUG", f"anthropic: skipping a content block of type {open_block.type!r}")
        return _NOTHING

    def _block_delta(self, chunk: _Event) -> Sequence[ChunkEvent]:
        delta = chunk.delta
        if delta is None:
            return _NOTHING
        kind = delta.type
        if kind == "text_delta":  # the common case: no block to look up
            return [TextDelta(text=delta.text)] if delta.text else _NOTHING
        open_block = self._blocks.get(chunk.index) if chunk.index is not None else None
        if kind == "input_json_delta":
            # Only a client tool's input is a tool call; a server tool's (web search) is not.
            if not delta.partial_json or open_block is None or open_block.type != "tool_use":
                return _NOTHING
            return [ToolCallFragment(index=chunk.index, id=open_block.id, arguments=delta.partial_json)]
        if kind == "thinking_delta":
            if not delta.thinking:
                return _NOTHING
            if open_block is not None:
                open_block.parts.append(delta.thinking)
            return [ReasoningDelta(text=delta.thinking)]
        if kind == "signature_delta":
            if open_block is not None and delta.signature:
                open_block.signature.append(delta.signature)
            return _NOTHING
        _log.log("DEBUG", f"anthropic: skipping a content block delta of type {kind!r}")
        return _NOTHING

    def _block_stop(self, chunk: _Event) -> Sequence[ChunkEvent]:
        open_block = self._blocks.pop(chunk.index, None) if chunk.index is not None else None
        if open_block is None:
            return _NOTHING
        if open_block.type == "tool_use":
            # The call ends with its block: accumulate_tool_calls completes it (and parses its input).
            return [ToolCallFragment(index=chunk.index, id=open_block.id, end=True)]
        if open_block.type == "thinking":
            return [
                Reasoning(text="".join(open_block.parts), signature="".join(open_block.signature) or None)
            ]
        if open_block.type == "redacted_thinking":
            return [Reasoning(text="", encrypted_content=open_block.data)]
        return _NOTHING

    def _add_usage(self, usage: _Usage) -> None:
        # Each report holds the counts so far: a field it gives replaces the earlier one.
        old = self._usage if self._usage is not None else _Usage()
        self._usage = _Usage(
            input_tokens=usage.input_tokens if usage.input_tokens is not None else old.input_tokens,
            output_tokens=usage.output_tokens if usage.output_tokens is not None else old.output_tokens,
            cache_read_input_tokens=usage.cache_read_input_tokens
            if usage.cache_read_input_tokens is not None
            else old.cache_read_input_tokens,
            cache_creation_input_tokens=usage.cache_creation_input_tokens
            if usage.cache_creation_input_tokens is not None
            else old.cache_creation_input_tokens,
        )

    def _total(self) -> Usage | None:
        usage = self._usage
        if usage is None:
            return None  # a message_start without usage, a compatible server that reports none
        cached = usage.cache_read_input_tokens or 0
        input_tokens = (usage.input_tokens or 0) + cached + (usage.cache_creation_input_tokens or 0)
        output_tokens = usage.output_tokens or 0
        return Usage(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            total_tokens=input_tokens + output_tokens,
            cached_input_tokens=cached,
        )


class AnthropicMessagesDialect:
    """The Messages API stream format.

    >>> parser = AnthropicMessagesDialect().parser()
    >>> parser.feed("message_stop", '{"type":"message_stop"}'), parser.done
    ((), True)
    """

    __slots__ = ()

    name = "anthropic-messages"
    end_of_turn = "message_stop"

    def parser(self) -> AnthropicMessagesParser:
        """Fresh decoding state for one stream."""
        return AnthropicMessagesParser()
