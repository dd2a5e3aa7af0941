"""The provider-and-server pairs the tier runs against, and what each server's own bytes say.

An ``Endpoint`` is one rxllm provider talking to one real server: ``OpenAIChat``
against both servers, ``OpenAIResponses`` and ``AnthropicMessages`` against
llama-server. ``Streamed`` reads a recorded reply (``real.proxy.Exchange``) with the
standard library and each API's documented field names: the text pieces, the tool
calls, the usage, the finish reason, the ids. These are the tests' expectations, taken
from what the server really sent, never from rxllm's own decoding.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from reactivex import Observable

from real.proxy import Exchange
from rxllm.control import PauseControl
from rxllm.events import AssistantEvent, Usage
from rxllm.messages import Message
from rxllm.providers._base import Provider
from rxllm.providers.anthropic import AnthropicMessages
from rxllm.providers.openai import OpenAIChat, OpenAIResponses
from rxllm.request import CompletionRequest
from rxllm.tools import tool

__all__ = ["ENDPOINTS", "Endpoint", "ForcedFirstTurn", "Streamed", "get_weather"]

SEED = 15
"""Sent with every request; with temperature 0 the servers decode greedily anyway."""

Dialect = Literal["openai-chat", "openai-responses", "anthropic-messages"]


@tool
def get_weather(city: Literal["Paris", "Zürich"], unit: Literal["C", "F"]) -> str:
    """The weather in a city.

    Args:
        city: The city.
        unit: The temperature unit.
    """
    return f"Sunny, 21 °{unit} in {city}"


def _without_tools(request: CompletionRequest) -> CompletionRequest:
    return replace(request, tools=(), tool_choice=None)


def _tool_choice(choice: str | Mapping[str, Any]) -> Callable[[CompletionRequest], CompletionRequest]:
    return lambda request: replace(request, tool_choice=choice)


@dataclass(frozen=True)
class Endpoint:
    id: str
    server: str
    """The session fixture that runs the server: ``llama_server`` or ``llama_cpp_python``."""
    dialect: Dialect
    make: type[Provider]
    force: str | Mapping[str, Any]
    """The ``tool_choice`` that forces a call of ``get_weather``."""
    answer_turn: Callable[[CompletionRequest], CompletionRequest]
    """How a turn after the tool result is sent so that the model answers instead of calling again."""
    finish_reasons: dict[str, str] = field(default_factory=dict)
    """The server's words for a turn cut at max tokens (``length``) and one that called a tool."""

    def provider(self, origin: str, **options: Any) -> Provider:
        base_url = origin if self.make is AnthropicMessages else f"{origin}/v1"
        return self.make("tiny-random", base_url=base_url, **options)

    def request(self, prompt: str, *, max_tokens: int, tools: bool = False) -> CompletionRequest:
        """A greedy request; with ``tools``, one that forces a ``get_weather`` call.

        llama-cpp-python's server puts the tool definitions into the system message, so
        a preamble is always there.
        """
        return CompletionRequest(
            [Message.user(prompt)],
            preamble="Use the tool.",
            tools=[get_weather] if tools else (),
            tool_choice=self.force if tools else None,
            temperature=0.0,
            max_tokens=max_tokens,
            params={"seed": SEED},
        )


ENDPOINTS = [
    Endpoint(
        "llama-server/chat",
        "llama_server",
        "openai-chat",
        OpenAIChat,
        # llama-server: an object tool_choice (naming the function) is read as "auto" with a
        # warning in its log; "required" is what forces a call.
        force="required",
        answer_turn=_tool_choice("none"),
        finish_reasons={"length": "length", "tool_calls": "tool_calls"},
    ),
    Endpoint(
        "llama-server/responses",
        "llama_server",
        "openai-responses",
        OpenAIResponses,
        force="required",
        answer_turn=_tool_choice("none"),
        # llama-server's Responses: "completed" also for a turn cut at max_output_tokens.
        finish_reasons={"length": "completed", "tool_calls": "completed"},
    ),
    Endpoint(
        "llama-server/messages",
        "llama_server",
        "anthropic-messages",
        AnthropicMessages,
        force={"type": "tool", "name": "get_weather"},
        # llama-server's Messages drops tool_choice {"type": "none"} (it knows auto, any and
        # tool), so the answer turn is sent without tools.
        answer_turn=_without_tools,
        finish_reasons={"length": "max_tokens", "tool_calls": "tool_use"},
    ),
    Endpoint(
        "llama-cpp-python/chat",
        "llama_cpp_python",
        "openai-chat",
        OpenAIChat,
        force={"type": "function", "function": {"name": "get_weather"}},
        answer_turn=_tool_choice("none"),
        finish_reasons={"length": "length", "tool_calls": "tool_calls"},
    ),
]


class ForcedFirstTurn:
    """A model for the agent whose first turn forces the tool and whose later turns answer.

    The agent sends the same ``tool_choice`` on every turn; a forced choice on every turn
    would call the tool forever. This wraps the provider (the agent takes anything with
    ``stream(request, *, pause=None)``) and changes each turn's request on its way out.
    """

    def __init__(self, provider: Provider, endpoint: Endpoint) -> None:
        self.provider = provider
        self.endpoint = endpoint

    def stream(
        self, request: CompletionRequest, *, pause: PauseControl | None = None
    ) -> Observable[AssistantEvent]:
        answered = any(message.role == "tool" for message in request.messages)
        turn = (
            self.endpoint.answer_turn(request)
            if answered
            else replace(request, tool_choice=self.endpoint.force)
        )
        return self.provider.stream(turn, pause=pause)


@dataclass(frozen=True)
class Call:
    id: str
    call_id: str
    name: str
    pieces: tuple[str, ...]

    @property
    def arguments(self) -> Any:
        return json.loads("".join(self.pieces))


@dataclass
class Streamed:
    """What one recorded reply says, read by the API's documented field names."""

    text: list[str] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    usage: Usage | None = None
    finish_reason: str | None = None
    response_id: str | None = None
    model: str | None = None

    @classmethod
    def read(cls, dialect: Dialect, exchange: Exchange) -> Streamed:
        events = exchange.events()
        if dialect == "openai-chat":
            return _read_chat([data for _, data in events if data != "[DONE]"])
        if dialect == "openai-responses":
            return _read_responses([data for _, data in events])
        return _read_messages([data for _, data in events])


def _read_chat(chunks: list[Any]) -> Streamed:
    out = Streamed()
    open_calls: dict[int, dict[str, Any]] = {}
    for chunk in chunks:
        out.response_id, out.model = chunk["id"], chunk["model"]
        for choice in chunk["choices"]:
            delta = choice.get("delta") or {}
            if delta.get("content"):
                out.text.append(delta["content"])
            for fragment in delta.get("tool_calls") or ():
                function = fragment.get("function") or {}
                # The first fragment of a call has its id and name (llama-cpp-python repeats them on
                # every fragment); the ones after it, only the index and more arguments.
                if fragment["index"] not in open_calls:
                    open_calls[fragment["index"]] = {
                        "id": fragment["id"],
                        "name": function["name"],
                        "pieces": [],
                    }
                call = open_calls[fragment["index"]]
                if function.get("arguments"):
                    call["pieces"].append(function["arguments"])
            if choice.get("finish_reason"):
                out.finish_reason = choice["finish_reason"]
        usage = chunk.get("usage")
        if usage is not None:
            details = usage.get("prompt_tokens_details") or {}
            reasoning = usage.get("completion_tokens_details") or {}
            out.usage = Usage(
                input_tokens=usage["prompt_tokens"],
                output_tokens=usage["completion_tokens"],
                total_tokens=usage["total_tokens"],
                cached_input_tokens=details.get("cached_tokens") or 0,
                reasoning_tokens=reasoning.get("reasoning_tokens") or 0,
            )
    out.calls = [Call(c["id"], c["id"], c["name"], tuple(c["pieces"])) for _, c in sorted(open_calls.items())]
    return out


def _read_responses(events: list[Any]) -> Streamed:
    out = Streamed()
    pieces: dict[str, list[str]] = {}
    items: dict[str, dict[str, Any]] = {}
    for event in events:
        kind = event["type"]
        if kind == "response.output_text.delta" and event["delta"]:
            out.text.append(event["delta"])
        elif kind == "response.output_item.added" and event["item"]["type"] == "function_call":
            items[event["item"]["id"]] = event["item"]
            pieces[event["item"]["id"]] = []
        elif kind == "response.function_call_arguments.delta" and event["delta"]:
            pieces[event["item_id"]].append(event["delta"])
        elif kind in ("response.completed", "response.incomplete"):
            response = event["response"]
            out.response_id, out.model = response["id"], response["model"]
            out.finish_reason = response["status"]
            usage = response["usage"]
            out.usage = Usage(
                input_tokens=usage["input_tokens"],
                output_tokens=usage["output_tokens"],
                total_tokens=usage["total_tokens"],
                cached_input_tokens=(usage.get("input_tokens_details") or {}).get("cached_tokens") or 0,
                reasoning_tokens=(usage.get("output_tokens_details") or {}).get("reasoning_tokens") or 0,
            )
    out.calls = [Call(id, item["call_id"], item["name"], tuple(pieces[id])) for id, item in items.items()]
    return out


def _read_messages(events: list[Any]) -> Streamed:
    out = Streamed()
    usage: dict[str, int] = {}
    blocks: dict[int, dict[str, Any]] = {}
    for event in events:
        kind = event["type"]
        if kind == "message_start":
            message = event["message"]
            out.response_id, out.model = message["id"], message["model"]
            usage.update(message["usage"])
        elif kind == "content_block_start":
            blocks[event["index"]] = {**event["content_block"], "pieces": []}
        elif kind == "content_block_delta":
            delta = event["delta"]
            if delta["type"] == "text_delta" and delta["text"]:
                out.text.append(delta["text"])
            elif delta["type"] == "input_json_delta" and delta["partial_json"]:
                blocks[event["index"]]["pieces"].append(delta["partial_json"])
        elif kind == "message_delta":
            out.finish_reason = event["delta"]["stop_reason"]
            usage.update(event["usage"])
    # Anthropic's input_tokens leaves out the tokens read from (and written to) the prompt
    # cache; the whole input is their sum.
    cached = usage.get("cache_read_input_tokens", 0)
    input_tokens = usage["input_tokens"] + cached + usage.get("cache_creation_input_tokens", 0)
    out.usage = Usage(
        input_tokens=input_tokens,
        output_tokens=usage["output_tokens"],
        total_tokens=input_tokens + usage["output_tokens"],
        cached_input_tokens=cached,
    )
    out.calls = [
        Call(block["id"], block["id"], block["name"], tuple(block["pieces"]))
        for _, block in sorted(blocks.items())
        if block["type"] == "tool_use"
    ]
    return out
