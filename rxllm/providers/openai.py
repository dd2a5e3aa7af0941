"""OpenAI: Chat Completions, which OpenAI-compatible servers speak too, and the Responses API.

``OpenAIChat`` serves OpenAI itself and every server with a compatible
``/v1/chat/completions`` (Ollama, vLLM, llama.cpp, LiteLLM, OpenRouter, DeepSeek)::

    provider = OpenAIChat("llama3.2", base_url="http://localhost:11434/v1")
    provider.stream(CompletionRequest([Message.user("Hi")])).subscribe(print)

``CompletionRequest(output=T)`` asks for structured output as ``response_format``
``{"type": "json_schema", "json_schema": {"name", "schema", "strict"}}`` (Chat) or
``text: {"format": {"type": "json_schema", "name", "schema", "strict"}}`` (Responses),
``strict`` true where the schema allows it (see ``rxllm.output``); the answer streams
as ``TextDelta`` JSON text.

``OpenAIResponses`` speaks ``/v1/responses``: reasoning summaries, reasoning items
carried forward between turns, and usage with cached and reasoning tokens::

    provider = OpenAIResponses("gpt-5-mini")
"""

from __future__ import annotations

from typing import Any

import msgspec

from rxllm.messages import Message, ReasoningPart, TextPart, ToolCallPart, ToolResultPart
from rxllm.output import output_spec
from rxllm.providers._base import Provider, add_common_options
from rxllm.providers._openai_chat import OpenAIChatDialect
from rxllm.providers._openai_responses import OpenAIResponsesDialect
from rxllm.request import CompletionRequest
from rxllm.typing import ToolSpec

__all__ = ["OpenAIChat", "OpenAIResponses"]


class OpenAIChat(Provider):
    """Streams Chat Completions from ``{base_url}/chat/completions``.

    ``api_key`` defaults to ``OPENAI_API_KEY`` (a local server needs none: then no
    ``Authorization`` header is sent), ``base_url`` to ``OPENAI_BASE_URL`` or
    ``https://api.openai.com/v1``.

    A turn is whole when its stream ends with ``[DONE]``, or with a finish reason
    and the usage chunk after it (rxllm asks for it with
    ``stream_options.include_usage``); a stream cut after the finish reason,
    before both, is a ``StreamTruncatedError``. ``require_end_marker=False``
    accepts the finish reason alone: for a server that sends neither the usage
    chunk nor ``[DONE]``, whose every turn would otherwise read as cut. Other
    keyword options are the common ones (see ``Provider``).
    """

    api_key_env = "OPENAI_API_KEY"
    base_url_env = "OPENAI_BASE_URL"
    default_base_url = "https://api.openai.com/v1"
    dialect = OpenAIChatDialect()

    def __init__(self, model: str, *, require_end_marker: bool = True, **options: Any) -> None:
        super().__init__(model, **options)
        self.require_end_marker = require_end_marker
        if not require_end_marker:
            self.dialect = OpenAIChatDialect(require_end_marker=False)

    @property
    def url(self) -> str:
        return f"{self.base_url}/chat/completions"

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"authorization": f"Bearer {api_key}"}

    def request_body(self, request: CompletionRequest) -> dict[str, Any]:
        messages: list[dict[str, Any]] = []
        if request.preamble is not None:
            messages.append({"role": "system", "content": request.preamble})
        for message in request.messages:
            messages.extend(_wire_messages(message))
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if request.tools:
            body["tools"] = [_wire_tool(tool) for tool in request.tools]
        if request.output is not None:
            # Structured output: the schema made once per type (rxllm.output), strict where it can be.
            spec = output_spec(request.output)
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": spec.name, "schema": spec.wire_schema, "strict": spec.strict},
            }
        return add_common_options(body, request, max_tokens_key="max_tokens")


def _wire_tool(tool: ToolSpec) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {"name": tool.name, "description": tool.description, "parameters": dict(tool.parameters)},
    }


def _wire_messages(message: Message) -> list[dict[str, Any]]:
    """One history entry in Chat Completions form; a tool message becomes one message per result."""
    if message.role == "tool":
        return [
            {"role": "tool", "tool_call_id": part.call_id, "content": part.content}
            for part in message.content
            if isinstance(part, ToolResultPart)
        ]
    text = "".join(part.text for part in message.content if isinstance(part, TextPart))
    calls = [part for part in message.content if isinstance(part, ToolCallPart)]
    if message.role != "assistant" or not calls:
        return [{"role": message.role, "content": text}]
    return [
        {
            "role": "assistant",
            # "" rather than null: OpenAI takes either, but llama-cpp-python's server (0.3.36)
            # answers HTTP 500 to null or no content on an assistant tool-call message.
            "content": text,
            "tool_calls": [
                {
                    "id": call.call_id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": _arguments_text(call.arguments)},
                }
                for call in calls
            ],
        }
    ]


def _arguments_text(arguments: Any) -> str:
    # Arguments that did not parse are kept as the raw string the model sent.
    if isinstance(arguments, str):
        return arguments
    return msgspec.json.encode(arguments).decode()


class OpenAIResponses(Provider):
    """Streams the Responses API from ``{base_url}/responses``.

    ``api_key`` defaults to ``OPENAI_API_KEY``, ``base_url`` to ``OPENAI_BASE_URL`` or
    ``https://api.openai.com/v1``. The body: ``input`` items from the history,
    ``instructions`` from the preamble, tools in the Responses function form,
    ``temperature``, ``max_output_tokens`` from ``max_tokens``, ``tool_choice`` as
    given, then ``params`` merged last.

    History becomes input items: user, system and assistant text as ``message``
    items; a ``ToolCallPart`` as a ``function_call`` item (with its item ``id`` when
    it has one of its own, i.e. ``id != call_id``: ids minted by other providers are
    no Responses item ids); a ``ToolResultPart`` as a ``function_call_output``
    paired by ``call_id``; a ``ReasoningPart`` with an ``id`` (one this API returned)
    as a ``reasoning`` item with its summary and, when it has one, its
    ``encrypted_content``, in its place before the call it led to. Reasoning without
    an id (another provider's) is not sent.

    ``include: ["reasoning.encrypted_content"]`` is not requested by default: with
    the default ``store: true`` the server keeps reasoning items and the carried
    ``id`` is enough, and non-reasoning models gain nothing from it. For stateless
    use (``store: false``, zero data retention) pass both in ``params``::

        params={"store": False, "include": ["reasoning.encrypted_content"]}

    and the encrypted reasoning is then carried forward too.
    """

    api_key_env = "OPENAI_API_KEY"
    base_url_env = "OPENAI_BASE_URL"
    default_base_url = "https://api.openai.com/v1"
    dialect = OpenAIResponsesDialect()

    @property
    def url(self) -> str:
        return f"{self.base_url}/responses"

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"authorization": f"Bearer {api_key}"}

    def request_body(self, request: CompletionRequest) -> dict[str, Any]:
        items: list[dict[str, Any]] = []
        for message in request.messages:
            items.extend(_input_items(message))
        body: dict[str, Any] = {"model": self.model, "input": items, "stream": True}
        if request.preamble is not None:
            body["instructions"] = request.preamble
        if request.tools:
            body["tools"] = [_responses_tool(tool) for tool in request.tools]
        if request.output is not None:
            spec = output_spec(request.output)
            body["text"] = {
                "format": {
                    "type": "json_schema",
                    "name": spec.name,
                    "schema": spec.wire_schema,
                    "strict": spec.strict,
                }
            }
        return add_common_options(body, request, max_tokens_key="max_output_tokens")


def _responses_tool(tool: ToolSpec) -> dict[str, Any]:
    return {
        "type": "function",
        "name": tool.name,
        "description": tool.description,
        "parameters": dict(tool.parameters),
    }


def _input_items(message: Message) -> list[dict[str, Any]]:
    """One history entry as Responses input items, in the order of its parts."""
    items: list[dict[str, Any]] = []
    text: list[str] = []

    def flush_text() -> None:
        if text:
            items.append({"type": "message", "role": message.role, "content": "".join(text)})
            text.clear()

    for part in message.content:
        if isinstance(part, TextPart):
            text.append(part.text)
            continue
        flush_text()
        if isinstance(part, ToolResultPart):
            items.append({"type": "function_call_output", "call_id": part.call_id, "output": part.content})
        elif isinstance(part, ToolCallPart):
            item: dict[str, Any] = {
                "type": "function_call",
                "call_id": part.call_id,
                "name": part.name,
                "arguments": _arguments_text(part.arguments),
            }
            if part.id and part.id != part.call_id:
                item["id"] = part.id
            items.append(item)
        elif isinstance(part, ReasoningPart) and part.id is not None:
            items.append(_reasoning_item(part))
    flush_text()
    return items


def _reasoning_item(part: ReasoningPart) -> dict[str, Any]:
    summary = [{"type": "summary_text", "text": part.text}] if part.text else []
    item: dict[str, Any] = {"type": "reasoning", "id": part.id, "summary": summary}
    if part.encrypted_content is not None:
        item["encrypted_content"] = part.encrypted_content
    return item
