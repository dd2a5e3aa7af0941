"""An agent's events, streamed to a browser as server-sent events: an aiohttp relay and a small page.

::

    python examples/web_relay.py                                  # offline: a scripted server on 127.0.0.1
    python examples/web_relay.py --provider openai --model gpt-4o-mini
    python examples/web_relay.py --provider openai --model llama3.2 --base-url http://localhost:11434/v1

then open http://127.0.0.1:8080/. The page (``web_relay.html``, served by the
same app) asks ``GET /chat?prompt=...`` with an ``EventSource`` and renders each
event as it arrives: text, reasoning (dimmed), each tool call as its arguments
stream and its result, retries, the usage at the end.

Each SSE message is one event as JSON (``msgspec.json.encode(event)``, tagged by
its ``type``); a ``FinalResponse`` goes without its ``history`` (the page has no
use for it, and it grows with every turn); a failure is sent as one last
message, ``ErrorInfo.from_exception(error)``, whose ``type`` is ``"error"``.

The stream lives exactly as long as the browser's request: Stop closes the
page's ``EventSource``, and leaving the page does the same; the app runs with
``handler_cancellation=True``, so the handler is cancelled at once, which
disposes the agent's subscription and closes the connection to the model, even
while the model is silent. The page closes its ``EventSource`` itself after the
final event: an ``EventSource`` whose response ends reconnects and would send
the prompt again (a second, billed run). As a guard against a page that does
not, each message carries an ``id``, and a request that comes back with
``Last-Event-ID`` (a reconnect) gets ``204 No Content``, which tells an
``EventSource`` to stop for good.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
from pathlib import Path

import msgspec
from aiohttp import web

import rxllm
from rxllm import Agent, ErrorInfo, FinalResponse
from rxllm.cli import DEMO_MODEL, DEMO_PROMPT, calculator_tool, clock_tool, demo_script
from rxllm.providers.anthropic import AnthropicMessages
from rxllm.providers.openai import OpenAIChat, OpenAIResponses
from rxllm.testing import ScriptedServer

PAGE = Path(__file__).with_name("web_relay.html")

AGENT: web.AppKey[Agent] = web.AppKey("agent", Agent)
PROMPT: web.AppKey[str] = web.AppKey("prompt", str)


def relay_app(agent: Agent, *, prompt: str = "") -> web.Application:
    """The relay: ``GET /`` is the page, ``GET /chat?prompt=...`` one agent run as server-sent events.

    ``prompt`` is the text the page's prompt box starts with.
    """
    app = web.Application()
    app[AGENT] = agent
    app[PROMPT] = prompt
    app.router.add_get("/", page)
    app.router.add_get("/chat", chat)
    return app


async def page(request: web.Request) -> web.Response:
    text = PAGE.read_text(encoding="utf-8").replace("{{prompt}}", _attribute(request.app[PROMPT]))
    return web.Response(text=text, content_type="text/html")


async def chat(request: web.Request) -> web.StreamResponse:
    """One run of the agent for ``prompt``, each event an SSE message; the last is the end or the error."""
    if "Last-Event-ID" in request.headers:
        return web.Response(status=204)  # an EventSource reconnecting: never run the prompt twice
    prompt = request.query.get("prompt", "").strip()
    if not prompt:
        return web.Response(status=400, text="ask /chat?prompt=...")
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    sent = 0

    async def send(event: object) -> None:
        nonlocal sent
        sent += 1
        await response.write(b"id: %d\ndata: %s\n\n" % (sent, msgspec.json.encode(event)))

    try:
        # The browser leaving cancels this handler (handler_cancellation=True): leaving the loop
        # disposes the subscription, which closes the connection to the model.
        async for event in rxllm.aiter(request.app[AGENT].stream_prompt(prompt)):
            if isinstance(event, FinalResponse):
                event = msgspec.structs.replace(event, history=())
            await send(event)
    except Exception as error:  # noqa: BLE001 - every failure reaches the page, as data
        await send(ErrorInfo.from_exception(error))
    await response.write_eof()
    return response


def _attribute(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


async def serve(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Start ``app`` on ``host:port``; the handler of a request whose client went away is cancelled."""
    runner = web.AppRunner(app, handler_cancellation=True)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


async def run(args: argparse.Namespace) -> None:
    if args.provider is None:
        # Offline: the demo's scripted OpenAI-compatible server and its two tools, like `rxllm demo`.
        async with ScriptedServer(demo_script() * 100, delay=args.delay, model=DEMO_MODEL) as server:
            model = server.provider()
            agent = Agent(model, tools=[calculator_tool(), clock_tool()], tool_concurrency=2)
            await _serve_until_stopped(agent, args, prompt=DEMO_PROMPT, note="offline: a scripted server")
            await model.aclose()
        return
    kind = {"openai": OpenAIChat, "responses": OpenAIResponses, "anthropic": AnthropicMessages}[args.provider]
    model = kind(args.model, base_url=args.base_url)
    async with model:
        await _serve_until_stopped(Agent(model), args, prompt="", note=f"{args.provider} {args.model}")


async def _serve_until_stopped(agent: Agent, args: argparse.Namespace, *, prompt: str, note: str) -> None:
    runner = await serve(relay_app(agent, prompt=prompt), args.host, args.port)
    print(f"{note}; open http://{args.host}:{args.port}/ (Ctrl-C stops)", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--provider", choices=("openai", "responses", "anthropic"), help="default: offline")
    parser.add_argument("--model", help="the model's name on the server")
    parser.add_argument("--base-url", help="the server (default: the provider's environment variable)")
    parser.add_argument("--host", default="127.0.0.1", help="where the page is served (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="(default: 8080)")
    parser.add_argument("--delay", type=float, default=0.05, help="offline: seconds between pieces")
    args = parser.parse_args(argv)
    if args.provider is not None and not args.model:
        parser.error("--provider needs --model")
    try:
        asyncio.run(run(args))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
