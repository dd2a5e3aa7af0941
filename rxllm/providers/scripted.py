"""The offline model: scripted turns, written as each provider's SSE bytes, for demos and tests.

Three pieces, none of which leaves the machine:

* ``Turn`` describes one completion turn without naming a provider (reasoning,
  text, tool calls, usage); ``sse_bytes(turn, dialect)`` writes it as the exact
  server-sent event bytes of OpenAI Chat Completions (``"openai"``), OpenAI
  Responses (``"responses"``) or Anthropic Messages (``"anthropic"``).
* ``ScriptedModel`` answers each ``stream(request)`` with the next turn of its
  script, with no network at all. A turn given as a ``Turn`` or as raw SSE bytes
  goes through the real decoding pipe (SSE decoder, ``parse_chunk``,
  ``accumulate_tool_calls``, ``dedupe_final``); a turn given as events is emitted
  as it is. It is a ``StreamModel``, so ``Agent(ScriptedModel([...]))`` works.
* ``ScriptedServer`` is a real HTTP server on 127.0.0.1 that answers the n-th
  POST with the n-th turn, streamed in pieces: the real providers talk to it
  over the loopback, the whole path from aiohttp up::

      async with ScriptedServer([Turn(calls=[Call("clock", {"tz": "UTC"})]), Turn(text=["Noon."])]) as server:
          agent = Agent(server.provider(), tools=[clock])

A turn may also be a function of the request (``CompletionRequest`` for the
model, ``ReceivedRequest`` for the server), so a scripted answer can use the tool
results the client sent back.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, TypeAlias, cast

import msgspec
import reactivex
from aiohttp import web
from reactivex import Observable, abc

from rxllm._source import decoded
from rxllm.control import PauseControl
from rxllm.errors import RxLLMError
from rxllm.events import AssistantEvent, Event, Final, ToolCall, Usage
from rxllm.operators import pause_gate
from rxllm.providers._anthropic_messages import AnthropicMessagesDialect
from rxllm.providers._base import Provider
from rxllm.providers._openai_chat import OpenAIChatDialect
from rxllm.providers._openai_responses import OpenAIResponsesDialect
from rxllm.providers._turn import Accounts, accounted
from rxllm.providers.anthropic import AnthropicMessages
from rxllm.providers.openai import OpenAIChat, OpenAIResponses
from rxllm.request import CompletionRequest
from rxllm.sse import DEFAULT_MAX_EVENT_SIZE
from rxllm.typing import Dialect

__all__ = [
    "Call",
    "DialectName",
    "ReceivedRequest",
    "Reply",
    "ScriptExhaustedError",
    "ScriptedModel",
    "ScriptedServer",
    "Turn",
    "anthropic_sse",
    "dialect_of",
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
    return _WRITERS[_known(dialect)](turn, model=model)


def dialect_of(name: DialectName) -> Dialect:
    """The dialect object (for ``parse_chunk``) of a wire format name."""
    return _DIALECTS[_known(name)]


def _known(name: str) -> str:
    if name not in _WRITERS:
        raise ValueError(f"unknown dialect {name!r}: use one of {', '.join(_WRITERS)}")
    return name


class ScriptExhaustedError(RxLLMError):
    """The script has no turn left for a request."""

    def __init__(self, request_number: int, turns: int) -> None:
        self.request_number = request_number
        self.turns = turns
        super().__init__(f"the script has no turn for request {request_number} (it has {turns})")


# -- the model --------------------------------------------------------------------------

ModelTurn: TypeAlias = Turn | Sequence[Event] | Sequence[bytes] | bytes
ModelScript: TypeAlias = ModelTurn | Callable[[CompletionRequest], ModelTurn]


class ScriptedModel:
    """A ``StreamModel`` that answers the n-th subscription with the n-th turn of its script, offline.

    A turn is a ``Turn`` or raw SSE bytes in ``dialect`` (decoded by the real pipe,
    so a malformed or truncated transcript fails as a server's would), a list of
    assistant events (emitted as given, with ``Final()`` added when the list has
    none), or a function of the ``CompletionRequest`` returning one of those.
    ``requests`` records what each subscription asked. Events are emitted on the
    subscription's scheduler, so the model also works inside marble tests.
    """

    def __init__(
        self, turns: Sequence[ModelScript], *, dialect: DialectName = "openai", model: str = DEFAULT_MODEL
    ) -> None:
        self.turns = list(turns)
        self.dialect = dialect_of(dialect)
        self.dialect_name = dialect
        self.model = model
        self.requests: list[CompletionRequest] = []

    def __repr__(self) -> str:
        return f"ScriptedModel({len(self.turns)} turns, dialect={self.dialect_name!r})"

    def stream(
        self, request: CompletionRequest, *, pause: PauseControl | None = None
    ) -> Observable[AssistantEvent]:
        """The next turn as a cold Observable; each subscription takes a turn, as each request would."""

        def subscribe(
            observer: abc.ObserverBase[AssistantEvent], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            self.requests.append(request)
            number = len(self.requests)
            if number > len(self.turns):
                return reactivex.throw(ScriptExhaustedError(number, len(self.turns))).subscribe(
                    observer, scheduler=scheduler
                )
            script = self.turns[number - 1]
            turn = script(request) if callable(script) else script
            return self._events(turn).subscribe(observer, scheduler=scheduler)

        events: Observable[AssistantEvent] = Observable(subscribe)
        return events if pause is None else events.pipe(pause_gate(pause))

    def _events(self, turn: ModelTurn) -> Observable[AssistantEvent]:
        if isinstance(turn, Turn):
            return replay_sse(sse_bytes(turn, self.dialect_name, model=self.model), self.dialect)
        if isinstance(turn, bytes):
            return replay_sse([turn], self.dialect)
        items = list(turn)
        if items and all(isinstance(item, bytes) for item in items):
            return replay_sse([item for item in items if isinstance(item, bytes)], self.dialect)
        # Emitted as given: a test may script any event, even one a provider would not send.
        events = cast(list[AssistantEvent], [item for item in items if not isinstance(item, bytes)])
        if not any(isinstance(event, Final) for event in events):
            reason = "tool_calls" if any(isinstance(event, ToolCall) for event in events) else "stop"
            events.append(Final(finish_reason=reason))
        return reactivex.from_iterable(events)


def replay_sse(pieces: Sequence[bytes], dialect: Dialect) -> Observable[AssistantEvent]:
    """SSE bytes through the decoding pipe a provider uses, without a network: a turn's events.

    As from a provider, an error carries the usage the bytes reported before it,
    and a ``StreamTruncatedError`` the ``partial`` response.
    """

    def turn(accounts: Accounts) -> Observable[AssistantEvent]:
        return reactivex.from_iterable(pieces).pipe(decoded(accounts.decoder))

    return accounted(turn, dialect, DEFAULT_MAX_EVENT_SIZE)


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
        _known(dialect)
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
