"""A loopback recording proxy in front of a real server: what crossed the wire, both ways.

``RecordingProxy(upstream)`` listens on a free 127.0.0.1 port and forwards every
request to ``upstream`` (method, path, headers but the hop-by-hop ones, the body's
bytes unchanged) and streams the reply back piece by piece, its body's bytes
unchanged too, as they arrive. Each exchange is recorded: the request body exactly as
the server received it, and the reply's status, headers and body exactly as the server
sent them. The tests take their expectations from these bytes, decoded here with the
standard library (``json``, a plain SSE line split), never with rxllm's own decoder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer
from multidict import CIMultiDict

__all__ = ["Exchange", "RecordingProxy", "sse_events"]

# Hop-by-hop headers (RFC 9110 7.6.1) and the ones the two sides recompute for their own framing.
_NOT_FORWARDED = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "host", "content-length"}
)


@dataclass
class Exchange:
    method: str
    path: str
    request_body: bytes
    status: int = 0
    response_headers: CIMultiDict[str] = field(default_factory=CIMultiDict)
    pieces: list[bytes] = field(default_factory=list)
    """The reply's body as it arrived, each piece recorded before it is passed on."""

    @property
    def response_body(self) -> bytes:
        return b"".join(self.pieces)

    @property
    def request_json(self) -> Any:
        return json.loads(self.request_body)

    def events(self) -> list[tuple[str | None, Any]]:
        """The reply's SSE events as ``(event name, data)``; data JSON-decoded unless it is ``[DONE]``."""
        return sse_events(self.response_body)


def sse_events(body: bytes) -> list[tuple[str | None, Any]]:
    """A plain reading of an SSE body (LF, CRLF or CR line ends; comments skipped)."""
    text = body.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    events: list[tuple[str | None, Any]] = []
    for block in text.split("\n\n"):
        name: str | None = None
        data: list[str] = []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[len("event:") :].strip()
            elif line.startswith("data:"):
                data.append(line[len("data:") :].removeprefix(" "))
        if data:
            payload = "\n".join(data)
            events.append((name, payload if payload == "[DONE]" else json.loads(payload)))
    return events


class RecordingProxy:
    """Forwards to ``upstream`` (an origin, ``http://127.0.0.1:port``) and records each exchange."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.exchanges: list[Exchange] = []
        self._server: TestServer | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def origin(self) -> str:
        assert self._server is not None, "start() first"
        return f"http://127.0.0.1:{self._server.port}"

    async def start(self) -> RecordingProxy:
        # No automatic decompression: a compressed body is forwarded as the bytes it is.
        self._session = aiohttp.ClientSession(
            auto_decompress=False, timeout=aiohttp.ClientTimeout(total=None)
        )
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._server = TestServer(app, host="127.0.0.1")
        await self._server.start_server()
        return self

    async def close(self) -> None:
        if self._server is not None:
            await self._server.close()
        if self._session is not None:
            await self._session.close()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None
        body = await request.read()
        exchange = Exchange(request.method, request.path_qs, body)
        self.exchanges.append(exchange)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _NOT_FORWARDED}
        async with self._session.request(
            request.method,
            self.upstream + request.path_qs,
            data=body,
            headers=headers,
            skip_auto_headers=("accept-encoding", "user-agent", "content-type"),
        ) as upstream:
            exchange.status = upstream.status
            exchange.response_headers = CIMultiDict(upstream.headers)
            reply = web.StreamResponse(
                status=upstream.status,
                reason=upstream.reason,
                headers={k: v for k, v in upstream.headers.items() if k.lower() not in _NOT_FORWARDED},
            )
            await reply.prepare(request)
            async for piece in upstream.content.iter_any():
                # Recorded first: the client never holds a byte the record lacks.
                exchange.pieces.append(piece)
                await reply.write(piece)
            await reply.write_eof()
            return reply
