"""OpenAI Chat Completions stream bytes for tests, with every field the API sends."""

from __future__ import annotations

from typing import Any

import msgspec

MODEL = "gpt-4o-mini-2024-07-18"
RESPONSE_ID = "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG"
DONE = b"data: [DONE]\n\n"


def chunk(
    delta: dict[str, Any] | None = None,
    finish: str | None = None,
    *,
    usage: dict[str, Any] | None = None,
    choices: bool = True,
    id: str = RESPONSE_ID,
) -> bytes:
    """One ``chat.completion.chunk`` as an SSE event."""
    body: dict[str, Any] = {
        "id": id,
        "object": "chat.completion.chunk",
        "created": 1741569952,
        "model": MODEL,
        "service_tier": "default",
        "system_fingerprint": "fp_06737a9306",
        "choices": [{"index": 0, "delta": delta or {}, "logprobs": None, "finish_reason": finish}]
        if choices
        else [],
        "usage": usage,
    }
    return b"data: " + msgspec.json.encode(body) + b"\n\n"


def tool_fragment(
    index: int, *, id: str | None = None, name: str | None = None, arguments: str = ""
) -> bytes:
    call: dict[str, Any] = {"index": index, "function": {"arguments": arguments}}
    if id is not None:
        call.update(id=id, type="function")
        call["function"]["name"] = name
    return chunk({"tool_calls": [call]})


def usage_chunk(prompt: int, completion: int) -> bytes:
    return chunk(
        usage={"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
        choices=False,
    )


def text_turn(*pieces: str, usage: tuple[int, int] = (10, 5)) -> list[bytes]:
    """A whole turn answering with text."""
    return [
        chunk({"role": "assistant", "content": ""}),
        *(chunk({"content": piece}) for piece in pieces),
        chunk({}, "stop"),
        usage_chunk(*usage),
        DONE,
    ]


def tool_turn(*calls: tuple[str, str, str], usage: tuple[int, int] = (10, 5), text: str = "") -> list[bytes]:
    """A whole turn calling tools: ``(id, name, arguments)`` each, arguments sent in two fragments."""
    pieces = [chunk({"role": "assistant", "content": None})]
    if text:
        pieces.append(chunk({"content": text}))
    for index, (call_id, name, arguments) in enumerate(calls):
        half = len(arguments) // 2
        pieces.append(tool_fragment(index, id=call_id, name=name, arguments=arguments[:half]))
        pieces.append(tool_fragment(index, arguments=arguments[half:]))
    pieces += [chunk({}, "tool_calls"), usage_chunk(*usage), DONE]
    return pieces
