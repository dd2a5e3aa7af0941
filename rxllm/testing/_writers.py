"""Scripted turns, provider-neutral, and the exact SSE bytes each provider would send for them.

``Turn`` describes one completion turn without naming a provider (reasoning,
text, tool calls, usage); ``sse_bytes(turn, dialect)`` writes it as the exact
server-sent event bytes of OpenAI Chat Completions (``"openai"``), OpenAI
Responses (``"responses"``) or Anthropic Messages (``"anthropic"``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec

from rxllm.errors import RxLLMError
from rxllm.events import Usage
from rxllm.providers._anthropic_messages import AnthropicMessagesDialect
from rxllm.providers._openai_chat import OpenAIChatDialect
from rxllm.providers._openai_responses import OpenAIResponsesDialect
from rxllm.typing import Dialect

__all__ = [
    "Call",
    "DEFAULT_MODEL",
    "DEFAULT_USAGE",
    "DialectName",
    "ScriptExhaustedError",
    "Turn",
    "anthropic_sse",
    "dialect_of",
    "known_dialect",
    "openai_chat_sse",
    "openai_responses_sse",
    "sse_bytes",
]

DialectName = Literal["openai", "responses", "anthropic"]
"""The wire formats: OpenAI Chat Completions, OpenAI Responses, Anthropic Messages."""

DEFAULT_MODEL = "scripted-model"
DEFAULT_USAGE = Usage(input_tokens=10, output_tokens=5, total_tokens=15)


@dataclass(frozen=True)
class Call:
    """A tool call in a scripted turn; ``id`` defaults to one numbered by its place in the turn.

    The arguments stream in two fragments, or as the given ``fragments`` (then
    their join is the argument text): ``Call("final_answer", fragments=['{"na',
    'me": "Ada"}'])`` streams an Anthropic structured answer piece by piece.
    """

    name: str
    arguments: Mapping[str, Any] | str = field(default_factory=dict)
    id: str | None = None
    fragments: Sequence[str] = ()

    @property
    def arguments_text(self) -> str:
        if self.fragments:
            return "".join(self.fragments)
        if isinstance(self.arguments, str):
            return self.arguments
        return msgspec.json.encode(dict(self.arguments)).decode()

    @property
    def pieces(self) -> list[str]:
        """The argument text as streamed."""
        return list(self.fragments) if self.fragments else _halves(self.arguments_text)


@dataclass(frozen=True)
class Turn:
    """One completion turn, provider-neutral: reasoning, then text, then tool calls.

    Each string in ``reasoning`` and ``text`` is one streamed piece. The turn ends
    with the provider's "tool calls" reason when it has calls, else its "stop"
    reason; ``usage`` is reported at the end (Anthropic has no reasoning count).
    ``usage=None`` scripts a server that reports none: no usage chunk (Chat
    Completions, which then still ends with ``[DONE]``), ``"usage": null``
    (Responses), no usage objects (Anthropic).
    """

    text: Sequence[str] = ()
    reasoning: Sequence[str] = ()
    calls: Sequence[Call] = ()
    usage: Usage | None = DEFAULT_USAGE


def _sse(data: Mapping[str, Any], event: str | None = None) -> bytes:
    head = b"" if event is None else b"event: " + event.encode() + b"\n"
    return head + b"data: " + msgspec.json.encode(data) + b"\n\n"


def _halves(text: str) -> list[str]:
    """Tool arguments in two fragments, as servers stream them (one when there is nothing to split)."""
    half = len(text) // 2
    return [text[:half], text[half:]] if half else [text]


def openai_chat_sse(
    turn: Turn, *, model: str = DEFAULT_MODEL, response_id: str = "chatcmpl-scripted"
) -> list[bytes]:
    """``turn`` as Chat Completions chunks: role, reasoning, text, calls, finish, usage, ``[DONE]``."""

    def chunk(delta: Mapping[str, Any] | None, finish: str | None = None, usage: Any = None) -> bytes:
        choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
        body = {
            "id": response_id,
            "object": "chat.completion.chunk",
            "created": 1760000000,
            "model": model,
            "choices": choices,
            "usage": usage,
        }
        return _sse(body)

    pieces = [chunk({"role": "assistant", "content": ""})]
    pieces += [chunk({"reasoning_content": piece}) for piece in turn.reasoning]
    pieces += [chunk({"content": piece}) for piece in turn.text]
    for index, call in enumerate(turn.calls):
        first, *rest = call.pieces
        head = {"name": call.name, "arguments": first}
        call_id = call.id or f"call_{index}"
        pieces.append(
            chunk({"tool_calls": [{"index": index, "id": call_id, "type": "function", "function": head}]})
        )
        pieces += [
            chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}) for piece in rest
        ]
    pieces.append(chunk({}, "tool_calls" if turn.calls else "stop"))
    usage = turn.usage
    if usage is not None:
        pieces.append(
            chunk(
                None,
                usage={
                    "prompt_tokens": usage.input_tokens,
                    "completion_tokens": usage.output_tokens,
                    "total_tokens": usage.total_tokens,
                    "prompt_tokens_details": {"cached_tokens": usage.cached_input_tokens},
                    "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
                },
            )
        )
    pieces.append(b"data: [DONE]\n\n")
    return pieces


def openai_responses_sse(
    turn: Turn, *, model: str = DEFAULT_MODEL, response_id: str = "resp_scripted"
) -> list[bytes]:
    """``turn`` as Responses events: a reasoning item, a message item, function-call items, completed."""
    pieces: list[bytes] = []
    sequence = iter(range(1_000_000))

    def event(kind: str, **fields: Any) -> None:
        pieces.append(_sse({"type": kind, "sequence_number": next(sequence), **fields}, kind))

    def response(status: str, usage: Any = None) -> dict[str, Any]:
        return {"id": response_id, "object": "response", "status": status, "model": model, "usage": usage}

    event("response.created", response=response("in_progress"))
    index = 0
    if turn.reasoning:
        item = {"id": "rs_0", "type": "reasoning", "summary": []}
        event("response.output_item.added", output_index=index, item=item)
        for piece in turn.reasoning:
            event(
                "response.reasoning_summary_text.delta",
                item_id="rs_0",
                output_index=index,
                summary_index=0,
                delta=piece,
            )
        summary = [{"type": "summary_text", "text": "".join(turn.reasoning)}]
        event("response.output_item.done", output_index=index, item={**item, "summary": summary})
        index += 1
    if turn.text:
        message = {
            "id": "msg_0",
            "type": "message",
            "role": "assistant",
            "status": "in_progress",
            "content": [],
        }
        event("response.output_item.added", output_index=index, item=message)
        for piece in turn.text:
            event(
                "response.output_text.delta",
                item_id="msg_0",
                output_index=index,
                content_index=0,
                delta=piece,
            )
        content = [{"type": "output_text", "text": "".join(turn.text), "annotations": []}]
        event(
            "response.output_item.done",
            output_index=index,
            item={**message, "status": "completed", "content": content},
        )
        index += 1
    for number, call in enumerate(turn.calls):
        call_id = call.id or f"call_{number}"
        item = {
            "id": f"fc_{number}",
            "type": "function_call",
            "status": "in_progress",
            "call_id": call_id,
            "name": call.name,
            "arguments": "",
        }
        event("response.output_item.added", output_index=index, item=item)
        for piece in call.pieces:
            event(
                "response.function_call_arguments.delta",
                item_id=f"fc_{number}",
                output_index=index,
                delta=piece,
            )
        done = {**item, "status": "completed", "arguments": call.arguments_text}
        event("response.output_item.done", output_index=index, item=done)
        index += 1
    usage = turn.usage
    event(
        "response.completed",
        response=response(
            "completed",
            None
            if usage is None
            else {
                "input_tokens": usage.input_tokens,
                "input_tokens_details": {"cached_tokens": usage.cached_input_tokens},
                "output_tokens": usage.output_tokens,
                "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
                "total_tokens": usage.total_tokens,
            },
        ),
    )
    return pieces


def anthropic_sse(
    turn: Turn, *, model: str = DEFAULT_MODEL, response_id: str = "msg_scripted"
) -> list[bytes]:
    """``turn`` as Messages events: a thinking block (signed), a text block, tool_use blocks, stop."""
    pieces: list[bytes] = []

    def event(kind: str, **fields: Any) -> None:
        pieces.append(_sse({"type": kind, **fields}, kind))

    usage = turn.usage
    message: dict[str, Any] = {
        "id": response_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
    }
    if usage is not None:
        message["usage"] = {
            # Anthropic counts cache reads apart from input_tokens.
            "input_tokens": usage.input_tokens - usage.cached_input_tokens,
            "cache_read_input_tokens": usage.cached_input_tokens,
            "output_tokens": 1,
        }
    event("message_start", message=message)
    index = 0
    if turn.reasoning:
        event(
            "content_block_start",
            index=index,
            content_block={"type": "thinking", "thinking": "", "signature": ""},
        )
        for piece in turn.reasoning:
            event("content_block_delta", index=index, delta={"type": "thinking_delta", "thinking": piece})
        event(
            "content_block_delta", index=index, delta={"type": "signature_delta", "signature": "scripted-sig"}
        )
        event("content_block_stop", index=index)
        index += 1
    if turn.text:
        event("content_block_start", index=index, content_block={"type": "text", "text": ""})
        for piece in turn.text:
            event("content_block_delta", index=index, delta={"type": "text_delta", "text": piece})
        event("content_block_stop", index=index)
        index += 1
    for number, call in enumerate(turn.calls):
        block = {"type": "tool_use", "id": call.id or f"toolu_{number}", "name": call.name, "input": {}}
        event("content_block_start", index=index, content_block=block)
        for piece in call.pieces:
            event(
                "content_block_delta", index=index, delta={"type": "input_json_delta", "partial_json": piece}
            )
        event("content_block_stop", index=index)
        index += 1
    stop = {"stop_reason": "tool_use" if turn.calls else "end_turn", "stop_sequence": None}
    if usage is not None:
        event("message_delta", delta=stop, usage={"output_tokens": usage.output_tokens})
    else:
        event("message_delta", delta=stop)
    event("message_stop")
    return pieces


_WRITERS: dict[str, Callable[..., list[bytes]]] = {
    "openai": openai_chat_sse,
    "responses": openai_responses_sse,
    "anthropic": anthropic_sse,
}

_DIALECTS: dict[str, Dialect] = {
    "openai": OpenAIChatDialect(),
    "responses": OpenAIResponsesDialect(),
    "anthropic": AnthropicMessagesDialect(),
}


def sse_bytes(turn: Turn, dialect: DialectName = "openai", *, model: str = DEFAULT_MODEL) -> list[bytes]:
    """``turn`` as the SSE bytes of ``dialect``, one streamed piece per list item."""
    return _WRITERS[known_dialect(dialect)](turn, model=model)


def dialect_of(name: DialectName) -> Dialect:
    """The dialect object (for ``parse_chunk``) of a wire format name."""
    return _DIALECTS[known_dialect(name)]


def known_dialect(name: str) -> str:
    """``name`` when it names a wire format; ``ValueError`` saying which do otherwise."""
    if name not in _WRITERS:
        raise ValueError(f"unknown dialect {name!r}: use one of {', '.join(_WRITERS)}")
    return name


class ScriptExhaustedError(RxLLMError):
    """The script has no turn left for a request."""

    def __init__(self, request_number: int, turns: int) -> None:
        self.request_number = request_number
        self.turns = turns
        super().__init__(f"the script has no turn for request {request_number} (it has {turns})")
