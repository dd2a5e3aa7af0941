"""What is measured: one request each, to its end, with the rebuilt text and tool arguments checked.

Three kinds of case, all reading the same pre-encoded streams from the loopback server:

* the **floor**: aiohttp, a minimal SSE split (``b"\\n\\n"``, then the ``data:`` line) and
  ``msgspec`` decoding into narrow typed Structs that hold only the fields used,
  rebuilding text and tool arguments from lists joined once. Nothing rxllm-specific,
  nothing a careful hand-written client would leave out;
* **rxllm**: ``OpenAIChat``, ``OpenAIResponses``, ``AnthropicMessages`` through
  ``stream(request)`` to the final event, subscribed directly on the loop;
* the **official SDKs** (the ``bench`` extra): ``chat.completions.create(stream=True)``,
  ``chat.completions.stream()`` to its final completion, ``responses.create(stream=True)``,
  ``messages.stream()`` to its final message. Their cases are left out when the SDK is
  not installed.

Every case returns an ``Outcome`` that ``check`` compares with the stream it asked for.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import msgspec

import rxllm
from benchmarks.streams import MODEL, PROMPT, TOOL_NAME, TOOL_RESULT, TOOL_SCHEMA, Api, Stream, build
from rxllm import CompletionRequest, Final, FinalResponse, Message, TextDelta, ToolCall, ToolResult
from rxllm.messages import TextPart
from rxllm.providers._base import Provider
from rxllm.providers.anthropic import AnthropicMessages
from rxllm.providers.openai import OpenAIChat, OpenAIResponses


class CheckError(AssertionError):
    """A case rebuilt something other than what the server sent."""


@dataclass
class Outcome:
    """What one request rebuilt: the text, the tool-call arguments (text or parsed) and its call id."""

    text: str
    arguments: str | Any
    call_id: str | None = None
    final_seen: bool = True


def check(name: str, outcome: Outcome, expected: Stream) -> None:
    if outcome.text != expected.text:
        raise CheckError(f"{name}: text differs ({len(outcome.text)} vs {len(expected.text)} characters)")
    wanted: Any = expected.arguments
    got = outcome.arguments
    if not isinstance(got, str):
        wanted = msgspec.json.decode(expected.arguments) if expected.arguments else None
    if got != wanted:
        raise CheckError(f"{name}: tool arguments differ: {str(got)[:80]!r} vs {str(wanted)[:80]!r}")
    if expected.arguments and outcome.call_id != expected.call_id:
        raise CheckError(f"{name}: call id {outcome.call_id!r}, expected {expected.call_id!r}")
    if not outcome.final_seen:
        raise CheckError(f"{name}: the stream ended without its final event")


def _messages() -> list[dict[str, Any]]:
    return [{"role": "user", "content": PROMPT}]


_CHAT_TOOLS = [{"type": "function", "function": {"name": TOOL_NAME, "description": "Current weather.",
                                                 "parameters": TOOL_SCHEMA}}]  # fmt: skip
_RESPONSES_TOOLS = [{"type": "function", "name": TOOL_NAME, "description": "Current weather.",
                     "parameters": TOOL_SCHEMA}]  # fmt: skip
_ANTHROPIC_TOOLS = [{"name": TOOL_NAME, "description": "Current weather.", "input_schema": TOOL_SCHEMA}]


def get_weather(city: str, days: int, units: str, notes: str) -> str:
    """Current weather.

    Args:
        city: The city.
        days: How many days ahead.
        units: metric or imperial.
        notes: Free text.
    """
    return TOOL_RESULT


weather_tool = rxllm.tool(get_weather)

# -- the floor -----------------------------------------------------------------------------------


class _ChatFunction(msgspec.Struct, gc=False):
    name: str | None = None
    arguments: str | None = None


class _ChatCall(msgspec.Struct, gc=False):
    index: int = 0
    id: str | None = None
    function: _ChatFunction | None = None


class _ChatDelta(msgspec.Struct, gc=False):
    content: str | None = None
    tool_calls: list[_ChatCall] | None = None


class _ChatChoice(msgspec.Struct, gc=False):
    delta: _ChatDelta | None = None
    finish_reason: str | None = None


class _ChatUsage(msgspec.Struct, gc=False):
    prompt_tokens: int = 0
    completion_tokens: int = 0


class _ChatChunk(msgspec.Struct, gc=False):
    choices: list[_ChatChoice] = []
    usage: _ChatUsage | None = None


class _RespItem(msgspec.Struct, gc=False):
    type: str | None = None
    call_id: str | None = None
    name: str | None = None


class _RespUsage(msgspec.Struct, gc=False):
    input_tokens: int = 0
    output_tokens: int = 0


class _RespResponse(msgspec.Struct, gc=False):
    status: str | None = None
    usage: _RespUsage | None = None


class _RespEvent(msgspec.Struct, gc=False):
    type: str
    delta: str | None = None
    item: _RespItem | None = None
    response: _RespResponse | None = None


class _AntBlock(msgspec.Struct, gc=False):
    type: str
    id: str | None = None
    name: str | None = None


class _AntDelta(msgspec.Struct, gc=False):
    type: str | None = None
    text: str | None = None
    partial_json: str | None = None
    stop_reason: str | None = None


class _AntUsage(msgspec.Struct, gc=False):
    input_tokens: int | None = None
    output_tokens: int | None = None


class _AntEvent(msgspec.Struct, gc=False):
    type: str
    content_block: _AntBlock | None = None
    delta: _AntDelta | None = None
    usage: _AntUsage | None = None


_chat_decoder = msgspec.json.Decoder(_ChatChunk)
_resp_decoder = msgspec.json.Decoder(_RespEvent)
_ant_decoder = msgspec.json.Decoder(_AntEvent)
_encoder = msgspec.json.Encoder()


@dataclass
class _Rebuilt:
    text: list[str] = field(default_factory=list)
    arguments: list[str] = field(default_factory=list)
    call_id: str | None = None
    name: str | None = None
    end: bool = False
    usage: tuple[int, int] = (0, 0)

    def outcome(self) -> Outcome:
        return Outcome("".join(self.text), "".join(self.arguments), self.call_id, self.end)


async def _floor_read(response: aiohttp.ClientResponse, handle: Callable[[bytes], None]) -> None:
    """Split the body at blank lines and hand each event's ``data:`` payload to ``handle``."""
    tail = b""
    async for piece in response.content.iter_any():
        if tail:
            piece = tail + piece
        *events, tail = piece.split(b"\n\n")
        for event in events:
            handle(event[event.find(b"data: ") + 6 :])


def _floor_chat_handler(out: _Rebuilt) -> Callable[[bytes], None]:
    def handle(data: bytes) -> None:
        if data == b"[DONE]":
            out.end = True
            return
        chunk = _chat_decoder.decode(data)
        for choice in chunk.choices:
            delta = choice.delta
            if delta is not None:
                if delta.content:
                    out.text.append(delta.content)
                if delta.tool_calls:
                    for call in delta.tool_calls:
                        if call.id:
                            out.call_id = call.id
                        function = call.function
                        if function is not None:
                            if function.name:
                                out.name = function.name
                            if function.arguments:
                                out.arguments.append(function.arguments)
        if chunk.usage is not None:
            out.usage = (chunk.usage.prompt_tokens, chunk.usage.completion_tokens)

    return handle


def _floor_responses_handler(out: _Rebuilt) -> Callable[[bytes], None]:
    def handle(data: bytes) -> None:
        event = _resp_decoder.decode(data)
        kind = event.type
        if kind == "response.output_text.delta":
            if event.delta:
                out.text.append(event.delta)
        elif kind == "response.function_call_arguments.delta":
            if event.delta:
                out.arguments.append(event.delta)
        elif kind == "response.output_item.added":
            item = event.item
            if item is not None and item.type == "function_call":
                out.call_id, out.name = item.call_id, item.name
        elif kind == "response.completed":
            out.end = True
            response = event.response
            if response is not None and response.usage is not None:
                out.usage = (response.usage.input_tokens, response.usage.output_tokens)

    return handle


def _floor_anthropic_handler(out: _Rebuilt) -> Callable[[bytes], None]:
    def handle(data: bytes) -> None:
        event = _ant_decoder.decode(data)
        kind = event.type
        if kind == "content_block_delta":
            delta = event.delta
            if delta is not None:
                if delta.type == "text_delta":
                    if delta.text:
                        out.text.append(delta.text)
                elif delta.type == "input_json_delta" and delta.partial_json:
                    out.arguments.append(delta.partial_json)
        elif kind == "content_block_start":
            block = event.content_block
            if block is not None and block.type == "tool_use":
                out.call_id, out.name = block.id, block.name
        elif kind == "message_delta":
            if event.usage is not None:
                out.usage = (event.usage.input_tokens or 0, event.usage.output_tokens or 0)
        elif kind == "message_stop":
            out.end = True

    return handle


_FLOOR_HANDLERS = {
    "chat": _floor_chat_handler,
    "responses": _floor_responses_handler,
    "anthropic": _floor_anthropic_handler,
}
_FLOOR_PATHS = {"chat": "/v1/chat/completions", "responses": "/v1/responses", "anthropic": "/v1/messages"}


def _floor_body(api: Api, messages: list[Any]) -> bytes:
    if api == "chat":
        body = {"model": MODEL, "messages": messages, "tools": _CHAT_TOOLS, "stream": True,
                "stream_options": {"include_usage": True}}  # fmt: skip
    elif api == "responses":
        body = {"model": MODEL, "input": messages, "tools": _RESPONSES_TOOLS, "stream": True}
    else:
        body = {"model": MODEL, "messages": messages, "tools": _ANTHROPIC_TOOLS, "max_tokens": 4096,
                "stream": True}  # fmt: skip
    return _encoder.encode(body)


_FLOOR_HEADERS = {"content-type": "application/json", "accept": "text/event-stream"}


async def floor_turn(session: aiohttp.ClientSession, base: str, api: Api, messages: list[Any]) -> _Rebuilt:
    out = _Rebuilt()
    handle = _FLOOR_HANDLERS[api](out)
    url = base + _FLOOR_PATHS[api]
    async with session.post(url, data=_floor_body(api, messages), headers=_FLOOR_HEADERS) as response:
        if response.status != 200:
            raise CheckError(f"floor {api}: HTTP {response.status}")
        await _floor_read(response, handle)
    return out


# -- the cases -----------------------------------------------------------------------------------


class Clients:
    """Everything made once per process: the aiohttp session, the providers, the SDK clients."""

    def __init__(self, origin: str) -> None:
        self.origin = origin
        # No connection limit: the scale benchmark opens 1,000 streams at once.
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        self._providers: dict[str, Provider] = {}
        self._openai: dict[str, Any] = {}
        self._anthropic: dict[str, Any] = {}

    def base(self, api: Api, events: int, mode: str = "burst") -> str:
        return f"{self.origin}/{api}/{events}/{mode}"

    def provider(self, api: Api, events: int, mode: str = "burst") -> Provider:
        """One provider per server endpoint, made once (as an application holds one per model)."""
        base = self.base(api, events, mode)
        provider = self._providers.get(base)
        if provider is None:
            if api == "chat":
                provider = OpenAIChat(MODEL, base_url=base + "/v1", api_key="", session=self.session)
            elif api == "responses":
                provider = OpenAIResponses(MODEL, base_url=base + "/v1", api_key="", session=self.session)
            else:
                provider = AnthropicMessages(MODEL, base_url=base, api_key="", session=self.session)
            self._providers[base] = provider
        return provider

    def openai(self, base: str) -> Any:
        client = self._openai.get(base)
        if client is None:
            import openai

            client = self._openai[base] = openai.AsyncOpenAI(
                api_key="bench", base_url=base + "/v1", max_retries=0
            )
        return client

    def anthropic(self, base: str) -> Any:
        client = self._anthropic.get(base)
        if client is None:
            import anthropic

            client = self._anthropic[base] = anthropic.AsyncAnthropic(
                api_key="bench", base_url=base, max_retries=0
            )
        return client

    async def aclose(self) -> None:
        for client in [*self._openai.values(), *self._anthropic.values()]:
            await client.close()
        await self.session.close()


Case = Callable[[Clients, int, str], Awaitable[Outcome]]


def _floor(api: Api) -> Case:
    async def run(clients: Clients, events: int, mode: str) -> Outcome:
        rebuilt = await floor_turn(clients.session, clients.base(api, events, mode), api, _messages())
        return rebuilt.outcome()

    return run


_REQUEST = CompletionRequest([Message.user(PROMPT)], tools=[weather_tool])


def _rxllm(api: Api) -> Case:
    async def run(clients: Clients, events: int, mode: str) -> Outcome:
        provider = clients.provider(api, events, mode)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        text: list[str] = []
        calls: list[ToolCall] = []
        finals: list[Final] = []

        def on_next(event: object) -> None:
            if isinstance(event, TextDelta):
                text.append(event.text)
            elif isinstance(event, ToolCall):
                calls.append(event)
            elif isinstance(event, Final):
                finals.append(event)

        def on_error(error: Exception) -> None:
            if not done.done():
                done.set_exception(error)

        def on_completed() -> None:
            if not done.done():
                done.set_result(None)

        provider.stream(_REQUEST).subscribe(on_next, on_error, on_completed)
        await done
        call = calls[0] if calls else None
        return Outcome(
            "".join(text),
            call.arguments if call is not None else None,
            call.call_id if call is not None else None,
            len(finals) == 1,
        )

    return run


async def _openai_create(clients: Clients, events: int, mode: str) -> Outcome:
    client = clients.openai(clients.base("chat", events, mode))
    stream = await client.chat.completions.create(
        model=MODEL,
        messages=_messages(),
        tools=_CHAT_TOOLS,
        stream=True,
        stream_options={"include_usage": True},
    )
    text: list[str] = []
    arguments: list[str] = []
    call_id = None
    usage = None
    async for chunk in stream:
        for choice in chunk.choices:
            delta = choice.delta
            if delta.content:
                text.append(delta.content)
            if delta.tool_calls:
                for call in delta.tool_calls:
                    if call.id:
                        call_id = call.id
                    if call.function is not None and call.function.arguments:
                        arguments.append(call.function.arguments)
        if chunk.usage is not None:
            usage = chunk.usage
    return Outcome("".join(text), "".join(arguments), call_id, usage is not None)


async def _openai_stream_helper(clients: Clients, events: int, mode: str) -> Outcome:
    client = clients.openai(clients.base("chat", events, mode))
    async with client.chat.completions.stream(model=MODEL, messages=_messages(), tools=_CHAT_TOOLS) as stream:
        completion = await stream.get_final_completion()
    message = completion.choices[0].message
    call = message.tool_calls[0] if message.tool_calls else None
    return Outcome(
        message.content or "",
        call.function.arguments if call is not None else "",
        call.id if call is not None else None,
        completion.choices[0].finish_reason is not None,
    )


async def _openai_responses(clients: Clients, events: int, mode: str) -> Outcome:
    client = clients.openai(clients.base("responses", events, mode))
    stream = await client.responses.create(
        model=MODEL, input=_messages(), tools=_RESPONSES_TOOLS, stream=True
    )
    text: list[str] = []
    arguments: list[str] = []
    call_id = None
    completed = False
    async for event in stream:
        kind = event.type
        if kind == "response.output_text.delta":
            text.append(event.delta)
        elif kind == "response.function_call_arguments.delta":
            arguments.append(event.delta)
        elif kind == "response.output_item.added" and event.item.type == "function_call":
            call_id = event.item.call_id
        elif kind == "response.completed":
            completed = True
    return Outcome("".join(text), "".join(arguments), call_id, completed)


async def _anthropic_stream(clients: Clients, events: int, mode: str) -> Outcome:
    client = clients.anthropic(clients.base("anthropic", events, mode))
    async with client.messages.stream(
        model=MODEL, max_tokens=4096, messages=_messages(), tools=_ANTHROPIC_TOOLS
    ) as stream:
        message = await stream.get_final_message()
    text = "".join(block.text for block in message.content if block.type == "text")
    calls = [block for block in message.content if block.type == "tool_use"]
    return Outcome(
        text,
        calls[0].input if calls else None,
        calls[0].id if calls else None,
        message.stop_reason is not None,
    )


# -- the agent: a two-turn tool run --------------------------------------------------------------


def _traced(case: Case) -> Case:
    """``case`` with ``rxllm.enable_tracing`` on (an SDK pipeline that keeps spans in memory)."""

    async def run(clients: Clients, events: int, mode: str) -> Outcome:
        from benchmarks.tracing import traced

        with traced("sdk"):
            return await case(clients, events, mode)

    return run


def _agent_floor(api: Api) -> Case:
    async def run(clients: Clients, events: int, mode: str) -> Outcome:
        base = clients.base(api, events, mode)
        messages: list[Any] = _messages()
        first = await floor_turn(clients.session, base, api, messages)
        arguments_text = "".join(first.arguments)
        arguments = msgspec.json.decode(arguments_text)
        result = get_weather(**arguments)
        assert first.call_id is not None and first.name is not None
        if api == "chat":
            messages += [
                {"role": "assistant", "content": "".join(first.text) or None, "tool_calls": [
                    {"id": first.call_id, "type": "function",
                     "function": {"name": first.name, "arguments": arguments_text}}]},
                {"role": "tool", "tool_call_id": first.call_id, "content": result},
            ]  # fmt: skip
        elif api == "responses":
            messages += [
                {"type": "message", "role": "assistant", "content": [{"type": "output_text",
                                                                      "text": "".join(first.text)}]},
                {"type": "function_call", "call_id": first.call_id, "name": first.name,
                 "arguments": arguments_text},
                {"type": "function_call_output", "call_id": first.call_id, "output": result},
            ]  # fmt: skip
        else:
            messages += [
                {"role": "assistant", "content": [{"type": "text", "text": "".join(first.text)},
                 {"type": "tool_use", "id": first.call_id, "name": first.name, "input": arguments}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": first.call_id,
                                              "content": result}]},
            ]  # fmt: skip
        second = await floor_turn(clients.session, base, api, messages)
        return Outcome("".join(first.text) + "|" + "".join(second.text), arguments, first.call_id, second.end)

    return run


def _agent_rxllm(api: Api) -> Case:
    async def run(clients: Clients, events: int, mode: str) -> Outcome:
        agent = rxllm.Agent(clients.provider(api, events, mode), tools=[weather_tool])
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        calls: list[ToolCall] = []
        results: list[ToolResult] = []
        final: list[FinalResponse] = []

        def on_next(event: object) -> None:
            if isinstance(event, ToolCall):
                calls.append(event)
            elif isinstance(event, ToolResult):
                results.append(event)
            elif isinstance(event, FinalResponse):
                final.append(event)

        def on_error(error: Exception) -> None:
            if not done.done():
                done.set_exception(error)

        def on_completed() -> None:
            if not done.done():
                done.set_result(None)

        agent.stream_prompt(PROMPT).subscribe(on_next, on_error, on_completed)
        await done
        if len(results) != 1 or results[0].content != TOOL_RESULT:
            raise CheckError(f"agent {api}: tool results {results!r}")
        response = final[0]
        first_text = _first_turn_text(response.history)
        return Outcome(
            first_text + "|" + response.text, calls[0].arguments, calls[0].call_id, response.turns == 2
        )

    return run


def _first_turn_text(history: Any) -> str:
    for message in history:
        if message.role == "assistant":
            return "".join(part.text for part in message.content if isinstance(part, TextPart))
    return ""


def agent_expected(api: Api, events: int) -> Stream:
    """What an agent run rebuilds: both turns' text (joined with ``|``) and the first turn's call."""
    first, second = build(api, events, "tool"), build(api, events, "text")
    return Stream(api, "tool", first.pieces + second.pieces, first.text + "|" + second.text, first.arguments,
                  first.call_id)  # fmt: skip


@dataclass(frozen=True)
class CaseSpec:
    name: str
    api: Api
    kind: str  # "floor", "rxllm", "sdk", "agent-floor", "agent-rxllm"
    run: Case
    needs: str | None = None  # the SDK module it needs


CASES: tuple[CaseSpec, ...] = (
    CaseSpec("floor-chat", "chat", "floor", _floor("chat")),
    CaseSpec("floor-responses", "responses", "floor", _floor("responses")),
    CaseSpec("floor-anthropic", "anthropic", "floor", _floor("anthropic")),
    CaseSpec("rxllm-chat", "chat", "rxllm", _rxllm("chat")),
    CaseSpec("rxllm-responses", "responses", "rxllm", _rxllm("responses")),
    CaseSpec("rxllm-anthropic", "anthropic", "rxllm", _rxllm("anthropic")),
    CaseSpec("rxllm-chat-traced", "chat", "rxllm", _traced(_rxllm("chat")), "opentelemetry.sdk"),
    CaseSpec("openai-create", "chat", "sdk", _openai_create, "openai"),
    CaseSpec("openai-stream", "chat", "sdk", _openai_stream_helper, "openai"),
    CaseSpec("openai-responses", "responses", "sdk", _openai_responses, "openai"),
    CaseSpec("anthropic-stream", "anthropic", "sdk", _anthropic_stream, "anthropic"),
    CaseSpec("agent-floor-chat", "chat", "agent-floor", _agent_floor("chat")),
    CaseSpec("agent-rxllm-chat", "chat", "agent-rxllm", _agent_rxllm("chat")),
)


def expected_for(spec: CaseSpec, events: int) -> Stream:
    if spec.kind.startswith("agent"):
        return agent_expected(spec.api, events)
    return build(spec.api, events, "tool")


def events_for(spec: CaseSpec, events: int) -> int:
    """Server-sent events one run of the case reads (two turns for the agent)."""
    return 2 * events if spec.kind.startswith("agent") else events
