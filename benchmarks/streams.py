"""Realistic, pre-encoded provider streams for the benchmarks, built deterministically.

Each stream carries every field the real APIs send on the wire (ids, ``object``,
``created``, ``system_fingerprint``, ``obfuscation``, ``sequence_number``, ``logprobs``,
the whole response echoed in ``response.completed``...), text deltas of 1-4 tokens with
non-ASCII words, one tool call whose arguments arrive in fragments, and usage. The
server and the clients build the same stream from the same parameters, so a client
knows the exact text and arguments it must rebuild.

A *tool* turn is text followed by a tool call; a *text* turn (the agent's second turn)
is text only. ``events`` counts the server-sent events: the "chunks" of the report.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any, Literal

import msgspec

Api = Literal["chat", "responses", "anthropic"]
TurnKind = Literal["tool", "text"]

APIS: tuple[Api, ...] = ("chat", "responses", "anthropic")
MODEL = "bench-model-2025-01-01"
TOOL_NAME = "get_weather"
TOOL_RESULT = "Sunny, 21 °C"
PROMPT = "What is the weather in Zürich? Answer at length."

_WORDS = (
    " the",
    " river",
    " runs",
    " past",
    " a",
    " café",
    " in",
    " Zürich",
    " where",
    " naïve",
    " tourists",
    " order",
    " crème",
    " brûlée",
    ";",
    " 東京",
    " and",
    " Москва",
    " are",
    " far",
    ",",
    " but",
    " 🙂",
    " résumé",
    " of",
    " Straße",
    " weather",
    " is",
    " mild",
    ".",
    " It",
    " will",
    " rain",
    " λ",
    " later",
)

_encode = msgspec.json.encode


@dataclass(frozen=True)
class Stream:
    """One pre-encoded reply: its SSE events (one ``bytes`` each) and what a client must rebuild."""

    api: Api
    turn: TurnKind
    pieces: tuple[bytes, ...]
    text: str
    arguments: str
    call_id: str

    @property
    def events(self) -> int:
        return len(self.pieces)

    @cached_property
    def body(self) -> bytes:
        return b"".join(self.pieces)


def _deltas(rng: random.Random, count: int) -> list[str]:
    """``count`` text deltas of 1-4 tokens each."""
    words = _WORDS
    return ["".join(rng.choice(words) for _ in range(rng.randint(1, 4))) for _ in range(count)]


def _fragments(text: str, count: int) -> list[str]:
    """``text`` cut into ``count`` pieces of near-equal length (some may be a few characters)."""
    count = max(1, min(count, len(text)))
    step, extra = divmod(len(text), count)
    pieces, start = [], 0
    for index in range(count):
        end = start + step + (1 if index < extra else 0)
        pieces.append(text[start:end])
        start = end
    return pieces


def _arguments(rng: random.Random, fragments: int) -> str:
    notes = "".join(_deltas(rng, max(1, fragments // 3)))
    return _encode({"city": "Zürich", "days": 3, "units": "metric", "notes": notes}).decode()


def _event(kind: str | None, data: Any) -> bytes:
    head = b"" if kind is None else b"event: " + kind.encode() + b"\n"
    return head + b"data: " + _encode(data) + b"\n\n"


@lru_cache(maxsize=64)
def build(api: Api, events: int, turn: TurnKind = "tool", seed: int = 7) -> Stream:
    """A stream of exactly ``events`` server-sent events (at least 32) in ``api``'s wire format."""
    if events < 32:
        raise ValueError("a benchmark stream has at least 32 events")
    rng = random.Random(f"{api}/{events}/{turn}/{seed}")
    fragments = max(4, min(200, events // 20)) if turn == "tool" else 0
    arguments = _arguments(rng, fragments) if turn == "tool" else ""
    writer = {"chat": _chat, "responses": _responses, "anthropic": _anthropic}[api]
    return writer(rng, events, turn, arguments, fragments)


# -- OpenAI Chat Completions ---------------------------------------------------------------------


def _chat(rng: random.Random, events: int, turn: TurnKind, arguments: str, fragments: int) -> Stream:
    call_id = "call_Xq8kBv2RzM1nT4pLw7Yd3sHc"
    overhead = 4 + (1 if turn == "tool" else 0)  # role, finish, usage, [DONE] (+ the call's head)
    texts = _deltas(rng, events - overhead - fragments)

    def chunk(delta: Any, finish: str | None = None, usage: Any = None, choices: bool = True) -> bytes:
        return _event(
            None,
            {
                "id": "chatcmpl-CP1bXYZabc123def456ghi789jk",
                "object": "chat.completion.chunk",
                "created": 1760000000,
                "model": MODEL,
                "service_tier": "default",
                "system_fingerprint": "fp_560af6e559",
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
                if choices
                else [],
                "usage": usage,
                "obfuscation": "k3Jd9",
            },
        )

    pieces = [chunk({"role": "assistant", "content": "", "refusal": None})]
    pieces += [chunk({"content": text}) for text in texts]
    if turn == "tool":
        head = {"name": TOOL_NAME, "arguments": ""}
        pieces.append(
            chunk({"tool_calls": [{"index": 0, "id": call_id, "type": "function", "function": head}]})
        )
        pieces += [
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
            for piece in _fragments(arguments, fragments)
        ]
    pieces.append(chunk({}, "tool_calls" if turn == "tool" else "stop"))
    usage = {
        "prompt_tokens": 472,
        "completion_tokens": events,
        "total_tokens": 472 + events,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }
    pieces.append(chunk(None, usage=usage, choices=False))
    pieces.append(b"data: [DONE]\n\n")
    assert len(pieces) == events, (len(pieces), events)
    return Stream("chat", turn, tuple(pieces), "".join(texts), arguments, call_id)


# -- OpenAI Responses ---------------------------------------------------------------------------


def _responses(rng: random.Random, events: int, turn: TurnKind, arguments: str, fragments: int) -> Stream:
    call_id = "call_Xq8kBv2RzM1nT4pLw7Yd3sHc"
    overhead = 8 + (3 if turn == "tool" else 0)
    texts = _deltas(rng, events - overhead - fragments)
    text = "".join(texts)
    pieces: list[bytes] = []
    sequence = 0

    def event(kind: str, **fields: Any) -> None:
        nonlocal sequence
        pieces.append(_event(kind, {"type": kind, "sequence_number": sequence, **fields}))
        sequence += 1

    message_id = "msg_68c1f0a2b3c4d5e6f708192a3b4c5d6e"
    item_id = "fc_68c1f0a2b3c4d5e6f708192a3b4c5d6f"
    message = {"id": message_id, "type": "message", "status": "completed", "role": "assistant"}
    part = {"type": "output_text", "annotations": [], "logprobs": [], "text": text}
    call = {"id": item_id, "type": "function_call", "status": "completed", "arguments": arguments,
            "call_id": call_id, "name": TOOL_NAME}  # fmt: skip
    output: list[Any] = [{**message, "content": [part]}] + ([call] if turn == "tool" else [])

    def response(status: str, out: list[Any], usage: Any) -> dict[str, Any]:
        return {
            "id": "resp_68c1f0a2b3c4d5e6f708192a3b4c5d70",
            "object": "response",
            "created_at": 1760000000,
            "status": status,
            "background": False,
            "error": None,
            "incomplete_details": None,
            "instructions": None,
            "max_output_tokens": None,
            "model": MODEL,
            "output": out,
            "parallel_tool_calls": True,
            "previous_response_id": None,
            "reasoning": {"effort": None, "summary": None},
            "service_tier": "default",
            "store": True,
            "temperature": 1.0,
            "text": {"format": {"type": "text"}, "verbosity": "medium"},
            "tool_choice": "auto",
            "tools": [
                {
                    "type": "function",
                    "name": TOOL_NAME,
                    "description": "Current weather.",
                    "strict": False,
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                }
            ],  # fmt: skip
            "top_p": 1.0,
            "truncation": "disabled",
            "usage": usage,
            "user": None,
            "metadata": {},
        }

    event("response.created", response=response("in_progress", [], None))
    event("response.in_progress", response=response("in_progress", [], None))
    event(
        "response.output_item.added", output_index=0, item={**message, "status": "in_progress", "content": []}
    )
    empty = {**part, "text": ""}
    event("response.content_part.added", item_id=message_id, output_index=0, content_index=0, part=empty)
    for piece in texts:
        event("response.output_text.delta", item_id=message_id, output_index=0, content_index=0,
              delta=piece, logprobs=[], obfuscation="k3Jd9")  # fmt: skip
    event("response.output_text.done", item_id=message_id, output_index=0, content_index=0, text=text,
          logprobs=[])  # fmt: skip
    event("response.content_part.done", item_id=message_id, output_index=0, content_index=0, part=part)
    event("response.output_item.done", output_index=0, item=output[0])
    if turn == "tool":
        event("response.output_item.added", output_index=1,
              item={**call, "status": "in_progress", "arguments": ""})  # fmt: skip
        for piece in _fragments(arguments, fragments):
            event("response.function_call_arguments.delta", item_id=item_id, output_index=1, delta=piece,
                  obfuscation="k3Jd9")  # fmt: skip
        event("response.function_call_arguments.done", item_id=item_id, output_index=1, arguments=arguments)
        event("response.output_item.done", output_index=1, item=call)
    usage = {
        "input_tokens": 472,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": events,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 472 + events,
    }
    event("response.completed", response=response("completed", output, usage))
    assert len(pieces) == events, (len(pieces), events)
    return Stream("responses", turn, tuple(pieces), text, arguments, call_id)


# -- Anthropic Messages -------------------------------------------------------------------------


def _anthropic(rng: random.Random, events: int, turn: TurnKind, arguments: str, fragments: int) -> Stream:
    call_id = "toolu_01A09q90qw90lq917835lq9A"
    overhead = 6 + (2 if turn == "tool" else 0)
    texts = _deltas(rng, events - overhead - fragments)
    pieces: list[bytes] = []

    def event(kind: str, **fields: Any) -> None:
        pieces.append(_event(kind, {"type": kind, **fields}))

    usage = {
        "input_tokens": 472,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
        "output_tokens": 2,
        "service_tier": "standard",
    }
    event("message_start", message={
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL", "type": "message", "role": "assistant", "model": MODEL,
        "content": [], "stop_reason": None, "stop_sequence": None, "usage": usage})  # fmt: skip
    event("content_block_start", index=0, content_block={"type": "text", "text": ""})
    event("ping")
    for piece in texts:
        event("content_block_delta", index=0, delta={"type": "text_delta", "text": piece})
    event("content_block_stop", index=0)
    if turn == "tool":
        event("content_block_start", index=1,
              content_block={"type": "tool_use", "id": call_id, "name": TOOL_NAME, "input": {}})  # fmt: skip
        for piece in _fragments(arguments, fragments):
            event("content_block_delta", index=1, delta={"type": "input_json_delta", "partial_json": piece})
        event("content_block_stop", index=1)
    event("message_delta", delta={"stop_reason": "tool_use" if turn == "tool" else "end_turn",
          "stop_sequence": None}, usage={**usage, "output_tokens": events})  # fmt: skip
    event("message_stop")
    assert len(pieces) == events, (len(pieces), events)
    return Stream("anthropic", turn, tuple(pieces), "".join(texts), arguments, call_id)


# -- requests -----------------------------------------------------------------------------------

TOOL_MARKERS: dict[Api, bytes] = {
    "chat": b'"role":"tool"',
    "responses": b'"function_call_output"',
    "anthropic": b'"tool_result"',
}
"""A request whose body holds this carries a tool result: the server answers with the text turn."""


def turn_for(api: Api, body: bytes) -> TurnKind:
    return "text" if TOOL_MARKERS[api] in body.replace(b'": "', b'":"') else "tool"


TOOL_SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "days": {"type": "integer"},
        "units": {"type": "string"},
        "notes": {"type": "string"},
    },
    "required": ["city"],
}
