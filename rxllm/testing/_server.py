"""``ScriptedServer``: a real HTTP server on 127.0.0.1 answering the n-th POST with the n-th scripted turn.

The real providers talk to it over the loopback, the whole path from aiohttp
up::

    async with ScriptedServer([Turn(calls=[Call("clock", {"tz": "UTC"})]), Turn(text=["Noon."])]) as server:
        agent = Agent(server.provider(), tools=[clock])

A turn may also be a function of the ``ReceivedRequest``, so a scripted answer
can use the tool results the client sent back.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeAlias

import msgspec
from aiohttp import web

from rxllm.providers._base import Provider
from rxllm.providers.anthropic import AnthropicMessages
from rxllm.providers.openai import OpenAIChat, OpenAIResponses
from rxllm.testing._writers import (
    DEFAULT_MODEL,
    DialectName,
    ScriptExhaustedError,
    Turn,
    known_dialect,
    sse_bytes,
)

__all__ = ["ReceivedRequest", "Reply", "ScriptedServer", "ServerScript", "ServerTurn"]

# -- the loopback server ----------------------------------------------------------------


@dataclass(frozen=True)
class ReceivedRequest:
    """A request the server received: path, headers and body (``json`` decodes it)."""

    path: str
    headers: Mapping[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return msgspec.json.decode(self.body)


@dataclass(frozen=True)
class Reply:
    """A reply spelled out: SSE ``pieces`` (or a ``Turn``), or a plain ``body`` with an error ``status``.

    ``delay`` (seconds) overrides the server's pause before each piece.
    """

    pieces: Sequence[bytes] | Turn = ()
    status: int = 200
    body: bytes | None = None
    delay: float | None = None


ServerTurn: TypeAlias = Turn | Reply | Sequence[bytes]
ServerScript: TypeAlias = ServerTurn | Callable[[ReceivedRequest], ServerTurn]


class ScriptedServer:
    """An HTTP server on 127.0.0.1 answering the n-th POST (any path) with the n-th scripted reply.

    Use it as ``async with`` (it runs on the current loop) or as ``with`` (it runs
    on a thread of its own, so a synchronous test or another loop can use it).
    ``delay`` is the pause before each streamed piece. A request past the end of
    the script gets HTTP 501 (never retried) with an error body saying so.

    ``requests`` records every request; ``disconnected`` is set when a client went
    away before its reply was fully written (a cancelled stream).
    """

    def __init__(
        self,
        turns: Sequence[ServerScript],
        *,
        dialect: DialectName = "openai",
        delay: float = 0.0,
        model: str = DEFAULT_MODEL,
    ) -> None:
        self.turns = list(turns)
        self.dialect: DialectName = dialect
        known_dialect(dialect)
        self.delay = delay
        self.model = model
        self.requests: list[ReceivedRequest] = []
        self.disconnected = threading.Event()
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._thread_loop: asyncio.AbstractEventLoop | None = None

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:PORT``: Anthropic's ``base_url``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``: OpenAI's ``base_url``."""
        return f"{self.origin}/v1"

    def provider(self, model: str | None = None, **options: Any) -> Provider:
        """The provider of this server's dialect, pointed at it, with no API key."""
        name = model or self.model
        options.setdefault("api_key", "")
        if self.dialect == "anthropic":
            return AnthropicMessages(name, base_url=self.origin, **options)
        kind = OpenAIResponses if self.dialect == "responses" else OpenAIChat
        return kind(name, base_url=self.base_url, **options)

    # -- running on the current loop ------------------------------------------------

    async def start(self) -> ScriptedServer:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        runner = web.AppRunner(app, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._runner = runner
        address = runner.addresses[0]
        self.port = int(address[1])
        return self

    async def close(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> ScriptedServer:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # -- running on a thread of its own -------------------------------------------------

    def __enter__(self) -> ScriptedServer:
        ready = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._thread_loop = loop
            try:
                loop.run_until_complete(self.start())
            except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self.close())
            loop.close()

        self._thread = threading.Thread(target=serve, name="rxllm-scripted-server", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            raise failure[0]
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        loop, thread = self._thread_loop, self._thread
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
        self._thread = self._thread_loop = None

    # -- answering ------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        received = ReceivedRequest(request.path, dict(request.headers), await request.read())
        self.requests.append(received)
        number = len(self.requests)
        if number > len(self.turns):
            error = ScriptExhaustedError(number, len(self.turns))
            body = msgspec.json.encode({"error": {"message": str(error), "type": "scripted_server"}})
            return web.Response(status=501, body=body, content_type="application/json")
        script = self.turns[number - 1]
        turn = script(received) if callable(script) else script
        reply = turn if isinstance(turn, Reply) else Reply(turn)
        if reply.body is not None or reply.status != 200:
            return web.Response(status=reply.status, body=reply.body or b"", content_type="application/json")
        pieces = (
            sse_bytes(reply.pieces, self.dialect, model=self.model)
            if isinstance(reply.pieces, Turn)
            else reply.pieces
        )
        delay = self.delay if reply.delay is None else reply.delay
        response = web.StreamResponse(
            headers={"content-type": "text/event-stream", "cache-control": "no-cache"}
        )
        await response.prepare(request)
        try:
            for piece in pieces:
                if delay:
                    await asyncio.sleep(delay)
                await response.write(piece)
            await response.write_eof()
        except ConnectionResetError:
            self.disconnected.set()  # the client went away (a cancelled stream): nothing to report
        except asyncio.CancelledError:
            self.disconnected.set()
            raise
        return response
