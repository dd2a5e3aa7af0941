"""A loopback HTTP/1.1 server that misbehaves on purpose, written on raw asyncio streams.

Each request gets the next ``Step`` of the script (the last one repeats), so a
test can say "503, 503, then the stream". Written below HTTP libraries so a
fault is exactly the bytes the test asks for: bodies use chunked transfer
encoding, so a dropped connection is distinguishable from a clean end, and
"one byte at a time" really writes one byte per chunk and drains it.

::

    server = await fault_server(Step(status=503), Step(pieces=STREAM))
    provider = OpenAIChat("m", base_url=server.base_url)
    ...
    assert server.request_count == 2
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import msgspec
import pytest

Ending = Literal["end", "drop", "stall", "ping"]


@dataclass
class Step:
    """One scripted reply.

    ``drop_at_once``: close the connection as soon as the request is read, before a
    single byte of response. Otherwise the status line and ``headers`` are sent;
    ``body`` is a whole (non-streamed) body; else ``pieces`` are written one HTTP
    chunk each, ``first_delay`` seconds before the first and ``delay`` between
    them (``bytewise`` splits them into single bytes). Then ``ending``: ``end``
    (the terminating chunk; the connection stays open for the next request),
    ``drop`` (close without it), ``stall`` (send nothing for ``stall`` seconds),
    ``ping`` (``: ping`` comments every ``delay`` seconds, forever).
    """

    status: int = 200
    headers: dict[str, str] = field(default_factory=lambda: {"content-type": "text/event-stream"})
    pieces: Sequence[bytes] = ()
    body: bytes | None = None
    first_delay: float = 0.0
    delay: float = 0.0
    bytewise: bool = False
    ending: Ending = "end"
    stall: float = 60.0
    drop_at_once: bool = False


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> object:
        return msgspec.json.decode(self.body)


class FaultServer:
    """Serves the script; records every request and knows which connections are still open."""

    def __init__(self, steps: Sequence[Step], *, choose: Callable[[int], Step] | None = None) -> None:
        assert steps or choose is not None
        self.steps = list(steps)
        self.choose = choose
        self.requests: list[Seen] = []
        self.open_connections = 0
        self.closed_by_client = 0
        self.all_closed = asyncio.Event()
        self.all_closed.set()
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self.base_url = ""

    @property
    def request_count(self) -> int:
        return len(self.requests)

    def step_for(self, index: int) -> Step:
        """The reply to request number ``index`` (from 0): ``choose(index)``, else the script's."""
        if self.choose is not None:
            return self.choose(index)
        return self.steps[min(index, len(self.steps) - 1)]

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.base_url = f"http://127.0.0.1:{port}/v1"

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._handlers):
            task.cancel()
        for task in list(self._handlers):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._server is not None:
            await self._server.wait_closed()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self.open_connections += 1
        self.all_closed.clear()
        try:
            while True:
                seen = await _read_request(reader)
                if seen is None:
                    break
                index = len(self.requests)
                self.requests.append(seen)
                if not await self._reply(self.step_for(index), reader, writer):
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            self.closed_by_client += 1
        except asyncio.CancelledError:
            pass
        finally:
            writer.transport.abort()
            self.open_connections -= 1
            if self.open_connections == 0:
                self.all_closed.set()
            self._handlers.discard(task)

    async def _reply(self, step: Step, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Send ``step``; ``True`` when the connection may serve another request."""
        if step.drop_at_once:
            return False
        head = [f"HTTP/1.1 {step.status} Scripted"]
        head += [f"{name}: {value}" for name, value in step.headers.items()]
        if step.body is not None:
            head.append(f"content-length: {len(step.body)}")
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + step.body)
            await writer.drain()
            return True
        head.append("transfer-encoding: chunked")
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
        await writer.drain()
        if step.first_delay:
            await _sleep(reader, step.first_delay)
        first = True
        for piece in step.pieces:
            parts = [piece[i : i + 1] for i in range(len(piece))] if step.bytewise else [piece]
            for part in parts:
                if step.delay and not first:
                    await _sleep(reader, step.delay)
                first = False
                await _chunk(writer, part)
        if step.ending == "drop":
            return False
        if step.ending == "stall":
            await _sleep(reader, step.stall)
            return False
        if step.ending == "ping":
            while True:
                await _sleep(reader, step.delay or 0.01)
                await _chunk(writer, b": ping\n\n")
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return True


async def _chunk(writer: asyncio.StreamWriter, data: bytes) -> None:
    if data:
        writer.write(b"%x\r\n%s\r\n" % (len(data), data))
        await writer.drain()


async def _sleep(reader: asyncio.StreamReader, seconds: float) -> None:
    """Send nothing for ``seconds``; a client closing the connection meanwhile ends the reply at once."""
    try:
        await asyncio.wait_for(reader.read(1), seconds)
    except TimeoutError:
        return
    raise ConnectionResetError("the client closed the connection")


async def _read_request(reader: asyncio.StreamReader) -> Seen | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, path, _version = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return Seen(method, path, headers, body)


StartFaultServer = Callable[..., Awaitable[FaultServer]]


@pytest.fixture
async def fault_server() -> AsyncIterator[StartFaultServer]:
    """``await fault_server(step, step, ...)`` starts a ``FaultServer``; all are closed after the test."""
    servers: list[FaultServer] = []

    async def start(*steps: Step) -> FaultServer:
        server = FaultServer(steps)
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.close()


# -- OpenAI Chat Completions streams to script ---------------------------------------------------

MODEL = "gpt-4o-mini"


def chat_chunk(delta: dict[str, object] | None = None, finish: str | None = None, **extra: object) -> bytes:
    """One ``chat.completion.chunk`` as an SSE event."""
    body: dict[str, object] = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "model": MODEL,
        "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}],
        **extra,
    }
    return b"data: " + msgspec.json.encode(body) + b"\n\n"


ROLE = chat_chunk({"role": "assistant", "content": ""})
DONE = b"data: [DONE]\n\n"


def text_stream(*texts: str) -> list[bytes]:
    """A whole Chat Completions stream answering ``texts`` (role chunk first, then [DONE])."""
    return [ROLE, *(chat_chunk({"content": text}) for text in texts), chat_chunk({}, "stop"), DONE]


def in_stream_error(message: str, type: str, code: str | None = None) -> bytes:
    return (
        b"data: " + msgspec.json.encode({"error": {"message": message, "type": type, "code": code}}) + b"\n\n"
    )
