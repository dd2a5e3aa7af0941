"""``CompletionResponse``: one completion turn, folded by ``collect_response()``.

::

    response = run(provider.stream(request).pipe(collect_response()))[0]
    response.text, response.tool_calls, response.usage.total_tokens
"""

from __future__ import annotations

import msgspec

from rxllm.events import ToolCall, Usage

__all__ = ["CompletionResponse"]


class CompletionResponse(msgspec.Struct, frozen=True, kw_only=True):
    """A whole completion turn: its text, reasoning, complete tool calls and ``Final`` metadata.

    ``reasoning`` joins the reasoning pieces, a whole ``Reasoning`` block standing
    in for the deltas it completes; ``usage``, ``finish_reason``, ``response_id``
    and ``model`` come from the turn's ``Final`` (zeros and ``None`` without one).
    """

    text: str = ""
    reasoning: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    usage: Usage = Usage()
    finish_reason: str | None = None
    response_id: str | None = None
    model: str | None = None
