"""Anthropic: the Messages API, streamed.

::

    provider = AnthropicMessages("claude-sonnet-4-5")
    provider.stream(CompletionRequest([Message.user("Hi")])).subscribe(print)
"""

from __future__ import annotations

from typing import Any

from rxllm.messages import Message, ReasoningPart, TextPart, ToolCallPart, ToolResultPart
from rxllm.providers._anthropic_messages import AnthropicMessagesDialect
from rxllm.providers._base import Provider
from rxllm.request import CompletionRequest
from rxllm.typing import ToolSpec

__all__ = ["AnthropicMessages"]

ANTHROPIC_VERSION = "2023-06-01"
"""The ``anthropic-version`` header every request carries."""

DEFAULT_MAX_TOKENS = 4096
"""``max_tokens`` when neither the request nor the provider says otherwise (the API requires one)."""

_TOOL_CHOICE = {"auto": {"type": "auto"}, "required": {"type": "any"}, "none": {"type": "none"}}


class AnthropicMessages(Provider):
    """Streams the Messages API from ``{base_url}/v1/messages``.

    ``api_key`` defaults to ``ANTHROPIC_API_KEY`` and travels in ``x-api-key`` (no
    ``Authorization`` header); every request carries ``anthropic-version:
    2023-06-01``. ``base_url`` is the origin, as in Anthropic's SDK: it defaults to
    ``ANTHROPIC_BASE_URL`` or ``https://api.anthropic.com``. ``max_tokens`` (required
    by the API) is ``CompletionRequest.max_tokens`` when set, else this provider's
    ``max_tokens`` (4096 unless given). Other keyword options are the common ones
    (see ``Provider``).

    The body: ``system`` from the preamble (and any system messages of the history,
    after it, a blank line apart), tools with ``input_schema``, ``tool_choice``
    mapped (``"auto"`` -> ``{"type": "auto"}``, ``"required"`` -> ``{"type": "any"}``,
    ``"none"`` -> ``{"type": "none"}``, an object passed as it is), ``temperature``,
    then ``params`` merged last.

    History: an assistant message becomes content blocks in the order of its parts:
    a ``ReasoningPart`` with a ``signature`` as a ``thinking`` block; one with only
    ``encrypted_content`` (no id, no signature: how a ``redacted_thinking`` block is
    kept) as ``redacted_thinking`` with that ``data``; text as ``text`` blocks;
    tool calls as ``tool_use`` blocks. Reasoning without a signature (another
    provider's) is not sent: Anthropic would refuse it. Tool results become
    ``tool_result`` blocks (``is_error`` on failures) in the next user message: the
    results of consecutive tool messages, and a user message right after them,
    share one user message.
    """

    api_key_env = "ANTHROPIC_API_KEY"
    base_url_env = "ANTHROPIC_BASE_URL"
    default_base_url = "https://api.anthropic.com"
    dialect = AnthropicMessagesDialect()
    # Anthropic answers 529 when it is overloaded: as retryable as a 503.
    retry_statuses = Provider.retry_statuses | {529}

    def __init__(self, model: str, *, max_tokens: int = DEFAULT_MAX_TOKENS, **options: Any) -> None:
        super().__init__(model, **options)
        self.max_tokens = max_tokens

    @property
    def url(self) -> str:
        return f"{self.base_url}/v1/messages"

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"x-api-key": api_key}

    def headers(self) -> dict[str, str]:
        headers = dict(super().headers())
        headers["anthropic-version"] = ANTHROPIC_VERSION
        return headers

    def request_body(self, request: CompletionRequest) -> dict[str, Any]:
        system = [request.preamble] if request.preamble is not None else []
        messages: list[dict[str, Any]] = []
        for message in request.messages:
            if message.role == "system":
                system.append(message.text)
            elif message.role == "assistant":
                messages.append({"role": "assistant", "content": _assistant_content(message)})
            else:
                _add_user_turn(messages, message)
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": request.max_tokens if request.max_tokens is not None else self.max_tokens,
            "messages": messages,
            "stream": True,
        }
        if system:
            body["system"] = "\n\n".join(system)
        if request.tools:
            body["tools"] = [_anthropic_tool(tool) for tool in request.tools]
        if request.tool_choice is not None:
            choice = request.tool_choice
            body["tool_choice"] = (
                _TOOL_CHOICE.get(choice, choice) if isinstance(choice, str) else dict(choice)
            )
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.params:
            body.update(request.params)
        return body


def _anthropic_tool(tool: ToolSpec) -> dict[str, Any]:
    return {"name": tool.name, "description": tool.description, "input_schema": dict(tool.parameters)}


def _assistant_content(message: Message) -> str | list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for part in message.content:
        if isinstance(part, TextPart):
            # Anthropic refuses empty text blocks.
            if part.text:
                blocks.append({"type": "text", "text": part.text})
        elif isinstance(part, ToolCallPart):
            arguments = part.arguments if isinstance(part.arguments, dict) else {}
            blocks.append({"type": "tool_use", "id": part.call_id, "name": part.name, "input": arguments})
        elif isinstance(part, ReasoningPart):
            if part.signature is not None:
                blocks.append({"type": "thinking", "thinking": part.text, "signature": part.signature})
            elif part.encrypted_content is not None and part.id is None:
                blocks.append({"type": "redacted_thinking", "data": part.encrypted_content})
    if all(block["type"] == "text" for block in blocks):
        return "".join(block["text"] for block in blocks)
    return blocks


def _add_user_turn(messages: list[dict[str, Any]], message: Message) -> None:
    """Append a user or tool message; tool results, and a user message after them, share one turn."""
    blocks: list[dict[str, Any]] = []
    for part in message.content:
        if isinstance(part, ToolResultPart):
            result: dict[str, Any] = {
                "type": "tool_result",
                "tool_use_id": part.call_id,
                "content": part.content,
            }
            if part.is_error:
                result["is_error"] = True
            blocks.append(result)
        elif isinstance(part, TextPart) and part.text:
            blocks.append({"type": "text", "text": part.text})
    last = messages[-1] if messages else None
    if (
        last is not None
        and last["role"] == "user"
        and isinstance(last["content"], list)
        and any(block["type"] == "tool_result" for block in last["content"])
    ):
        last["content"].extend(blocks)
    elif message.role == "user" and all(block["type"] == "text" for block in blocks):
        messages.append({"role": "user", "content": message.text})
    else:
        messages.append({"role": "user", "content": blocks})
