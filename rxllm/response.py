"""``CompletionResponse``: one completion turn, whole; and ``ResponseBuilder``, which folds the events.

::

    response = run(provider.stream(request).pipe(collect_response()))[0]
    response.text, response.tool_calls, response.usage  # None when the server reported none
"""

from __future__ import annotations

import msgspec

from rxllm.events import (
    AgentEvent,
    Final,
    Reasoning,
    ReasoningDelta,
    StreamReset,
    TextDelta,
    ToolCall,
    Usage,
)
from rxllm.messages import Message, Part, ReasoningPart, TextPart, ToolCallPart

__all__ = ["CompletionResponse", "ResponseBuilder"]


class CompletionResponse(msgspec.Struct, frozen=True, kw_only=True):
    """A whole completion turn: its text, reasoning, complete tool calls and ``Final`` metadata.

    ``reasoning`` joins the reasoning pieces; ``reasoning_blocks`` keeps them as
    blocks in order of appearance, each a whole ``Reasoning`` (with its signature
    or encrypted content where the provider sent one) standing in for the deltas
    it completes. ``usage``, ``finish_reason``, ``response_id`` and ``model`` come
    from the turn's ``Final`` (``None`` without one; ``usage`` is ``None`` too when
    the server reported none). ``usage_complete`` is true only when ``usage``
    counts every request of the turn: false without usage, or when an attempt a
    ``StreamReset`` discarded reported none.
    """

    text: str = ""
    reasoning: str = ""
    reasoning_blocks: tuple[Reasoning, ...] = ()
    tool_calls: tuple[ToolCall, ...] = ()
    usage: Usage | None = None
    finish_reason: str | None = None
    response_id: str | None = None
    model: str | None = None
    usage_complete: bool = False

    def assistant_message(self) -> Message:
        """This turn as a history entry: reasoning blocks, then text, then tool calls.

        That order is what providers expect back (Anthropic wants thinking blocks
        before the ``tool_use`` they led to).
        """
        parts: list[Part] = [
            ReasoningPart(
                text=block.text,
                id=block.id,
                signature=block.signature,
                encrypted_content=block.encrypted_content,
            )
            for block in self.reasoning_blocks
        ]
        if self.text:
            parts.append(TextPart(text=self.text))
        parts.extend(
            ToolCallPart(id=call.id, call_id=call.call_id, name=call.name, arguments=call.arguments)
            for call in self.tool_calls
        )
        return Message(role="assistant", content=tuple(parts))


class _ReasoningBlocks:
    """Reasoning in order of appearance: open runs of deltas, and whole blocks that replace them.

    A ``Reasoning`` block replaces the open run of deltas with the same ``id``
    (the Responses API sends both the deltas and the completed block), so
    nothing is counted twice; a block with no open run is added as it is.
    """

    def __init__(self) -> None:
        self.blocks: list[list[str] | Reasoning] = []
        self.ids: list[str | None] = []
        self.open: dict[str | None, int] = {}

    def delta(self, event: ReasoningDelta) -> None:
        at = self.open.get(event.id)
        if at is None:
            self.open[event.id] = len(self.blocks)
            self.blocks.append([event.text])
            self.ids.append(event.id)
        else:
            pieces = self.blocks[at]
            assert isinstance(pieces, list)
            pieces.append(event.text)

    def block(self, event: Reasoning) -> None:
        at = self.open.pop(event.id, None)
        if at is None:
            self.blocks.append(event)
            self.ids.append(event.id)
        else:
            self.blocks[at] = event

    def whole(self) -> tuple[Reasoning, ...]:
        return tuple(
            block if isinstance(block, Reasoning) else Reasoning(text="".join(block), id=id)
            for block, id in zip(self.blocks, self.ids, strict=True)
        )


class ResponseBuilder:
    """Folds one turn's assistant events; ``build()`` gives the ``CompletionResponse``.

    Text pieces are gathered in a list and joined once, so building is linear in
    the number of deltas. ``ToolCallDelta`` is progress only and is ignored;
    ``ToolCall`` events make ``tool_calls``; ``Final`` pieces merge with
    ``Final.updated``. A ``StreamReset`` clears everything gathered: the turn
    starts again.
    """

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        """Forget everything gathered (what a ``StreamReset`` does)."""
        self._text: list[str] = []
        self._reasoning = _ReasoningBlocks()
        self._tool_calls: list[ToolCall] = []
        self._final: Final | None = None

    @property
    def text(self) -> str:
        """The text so far (joins the pieces: for the end of a turn, not per event)."""
        return "".join(self._text)

    def feed(self, event: AgentEvent) -> None:
        """Take one event of the turn; events that are not assistant content are ignored."""
        if type(event) is TextDelta:  # the common case first, without an isinstance chain
            self._text.append(event.text)
        elif isinstance(event, TextDelta):
            self._text.append(event.text)
        elif isinstance(event, ReasoningDelta):
            self._reasoning.delta(event)
        elif isinstance(event, Reasoning):
            self._reasoning.block(event)
        elif isinstance(event, ToolCall):
            self._tool_calls.append(event)
        elif isinstance(event, Final):
            self._final = event if self._final is None else self._final.updated(event)
        elif type(event) is StreamReset:
            self.clear()

    def build(self) -> CompletionResponse:
        end = self._final if self._final is not None else Final()
        blocks = self._reasoning.whole()
        return CompletionResponse(
            text="".join(self._text),
            reasoning="".join(block.text for block in blocks),
            reasoning_blocks=blocks,
            tool_calls=tuple(self._tool_calls),
            usage=end.usage,
            finish_reason=end.finish_reason,
            response_id=end.response_id,
            model=end.model,
            usage_complete=end.usage is not None and end.usage_complete,
        )
