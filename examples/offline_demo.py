"""Offline demo: stream a completion from a scripted OpenAI-compatible server on loopback.

The server replays Chat Completions SSE bytes (reasoning, text, a tool call,
usage) in small timed pieces; the client is the real ``OpenAIChat`` provider,
so this is the whole path: aiohttp, the SSE reader, the operators, the events.

    python examples/offline_demo.py
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import msgspec
from aiohttp import web

from rxllm import CompletionRequest, Message, PauseControl
from rxllm.events import Final, ReasoningDelta, TextDelta, ToolCall, ToolCallDelta
from rxllm.providers.openai import OpenAIChat

DIM, BOLD, RESET = ("\x1b[2m", "\x1b[1m", "\x1b[0m") if sys.stdout.isatty() else ("", "", "")


def _chunk(delta: dict[str, Any], finish: str | None = None, usage: dict[str, int] | None = None) -> bytes:
    body = {
        "id": "chatcmpl-demo",
        "object": "chat.completion.chunk",
        "created": 1760000000,
        "model": "demo-model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}] if usage is None else [],
        "usage": usage,
    }
    return b"data: " + msgspec.json.encode(body) + b"\n\n"


SCRIPT = [
    _chunk({"role": "assistant", "reasoning_content": "The user wants the time in Tokyo; "}),
    _chunk({"reasoning_content": "I will look it up and answer briefly."}),
    *(_chunk({"content": piece}) for piece in ["Let me ", "check the ", "clock in ", "東京 ", "for you."]),
    _chunk({"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "clock"}}]}),
    _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"tz": '}}]}),
    _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Asia/Tokyo"}'}}]}),
    _chunk({}, "tool_calls"),
    _chunk({}, usage={"prompt_tokens": 42, "completion_tokens": 31, "total_tokens": 73}),
    b"data: [DONE]\n\n",
]


async def _replay(request: web.Request) -> web.StreamResponse:
    await request.read()
    response = web.StreamResponse(headers={"content-type": "text/event-stream"})
    await response.prepare(request)
    for piece in SCRIPT:
        await asyncio.sleep(0.08)
        await response.write(piece)
    return response


def _show(event: object) -> None:
    match event:
        case ReasoningDelta(text=text):
            print(f"{DIM}{text}{RESET}", end="", flush=True)
        case TextDelta(text=text):
            print(text, end="", flush=True)
        case ToolCallDelta(name=name) if name:
            print(f"\n{BOLD}tool call{RESET} {name} ", end="", flush=True)
        case ToolCall(name=name, arguments=arguments):
            print(f"\n{BOLD}complete call{RESET} {name}({arguments})")
        case Final(usage=usage, finish_reason=reason):
            print(f"{DIM}finish: {reason}; tokens in {usage.input_tokens}, out {usage.output_tokens}{RESET}")


async def main() -> None:
    app = web.Application()
    app.router.add_post("/v1/chat/completions", _replay)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with OpenAIChat("demo-model", base_url=f"http://127.0.0.1:{port}/v1") as model:
            done = asyncio.get_running_loop().create_future()
            control = PauseControl()
            request = CompletionRequest([Message.user("What time is it in Tokyo?")])
            print(f"{BOLD}user{RESET} What time is it in Tokyo?\n{BOLD}assistant{RESET} ", end="")
            model.stream(request, pause=control).subscribe(
                _show, lambda error: done.set_exception(error), lambda: done.set_result(None)
            )
            await asyncio.sleep(0.5)
            control.pause()
            print(f" {DIM}[paused 1 s]{RESET} ", end="", flush=True)
            await asyncio.sleep(1.0)
            control.resume()
            await done
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
