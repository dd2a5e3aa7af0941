"""OpenAI: Chat Completions, which OpenAI-compatible servers speak too.

``OpenAIChat`` serves OpenAI itself and every server with a compatible
``/v1/chat/completions`` (Ollama, vLLM, llama.cpp, LiteLLM, OpenRouter, DeepSeek)::

    provider = OpenAIChat("llama3.2", base_url="http://localhost:11434/v1")
    provider.stream(CompletionRequest([Message.user("Hi")])).subscribe(print)
"""

from __future__ import annotations

from typing import Any

import msgspec

from rxllm.messages import Message, TextPart, ToolCallPart, ToolResultPart
from rxllm.providers._base import Provider
from rxllm.providers._openai_chat import OpenAIChatDialect
from rxllm.request import CompletionRequest
from rxllm.typing import ToolSpec

__all__ = ["OpenAIChat"]


class OpenAIChat(Provider):
    """Streams Chat Completions from ``{base_url}/chat/completions``.

    ``api_key`` defaults to ``OPENAI_API_KEY`` (a local server needs none: then no
    ``Authorization`` header is sent), ``base_url`` to ``OPENAI_BASE_URL`` or
    ``https://api.openai.com/v1``.
    """

    api_key_env = "OPENAI_API_KEY"
    base_url_env = "OPENAI_BASE_URL"
    default_base_url = "https://api.openai.com/v1"
    dialect = OpenAIChatDialect()

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
        if request.tool_choice is not None:
            body["tool_choice"] = request.tool_choice
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.max_tokens is not None:
            body["max_tokens"] = request.max_tokens
        if request.params:
            body.update(request.params)
        return body


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
            "content": text or None,
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
