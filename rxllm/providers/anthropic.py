"""Anthropic: the Messages API, streamed.

::

    provider = AnthropicMessages("claude-sonnet-4-5")
    provider.stream(CompletionRequest([Message.user("Hi")])).subscribe(print)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
from reactivex import Observable, abc

from rxllm.control import PauseControl
from rxllm.events import AssistantEvent, Final, StreamReset, TextDelta, ToolCall, ToolCallDelta
from rxllm.messages import Message, ReasoningPart, TextPart, ToolCallPart, ToolResultPart
from rxllm.output import OutputSpec, output_spec
from rxllm.providers._anthropic_messages import AnthropicMessagesDialect
from rxllm.providers._base import Provider
from rxllm.request import CompletionRequest
from rxllm.typing import ToolSpec

__all__ = ["OUTPUT_TOOL", "AnthropicMessages"]

ANTHROPIC_VERSION = "2023-06-01"
"""The ``anthropic-version`` header every request carries."""

DEFAULT_MAX_TOKENS = 4096
"""``max_tokens`` when neither the request nor the provider says otherwise (the API requires one)."""

OUTPUT_TOOL = "final_answer"
"""The tool through which a request with ``output=T`` gets its structured answer."""

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

    Structured output (``CompletionRequest(output=T)``) goes through a tool:
    ``final_answer``, whose ``input_schema`` is ``T``'s schema, offered after the
    request's own tools. With no other tools the request forces it
    (``tool_choice: {"type": "tool", "name": "final_answer"}``); beside other tools
    it asks for some tool call (``{"type": "any"}``), so the model calls the
    tools it needs, then answers through ``final_answer``. A ``tool_choice`` given
    in the request is sent as given instead. The answer's input JSON then
    streams as ``TextDelta`` events (no ``ToolCallDelta``, no ``ToolCall``) and
    a turn whose only call was the answer ends with ``end_turn`` rather than
    ``tool_use``: downstream, the events are those of the OpenAI providers'
    ``json_schema`` answers, and the turn's history is an assistant text message.
    A tool rather than the ``output_config.format`` option, because tools take
    a schema on every Claude model and on servers that speak the Messages API
    (llama.cpp), with no beta header. Anthropic refuses a forced ``tool_choice``
    with extended thinking: with thinking on, pass ``tool_choice="auto"``. The
    tool's input must be an object, so ``T`` must be a Struct, a dataclass, a
    TypedDict or a mapping of named fields.
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
        tools = [_anthropic_tool(tool) for tool in request.tools]
        if request.output is not None:
            tools.append(_output_tool(output_spec(request.output), request.tools))
        if tools:
            body["tools"] = tools
        if request.tool_choice is not None:
            choice = request.tool_choice
            body["tool_choice"] = (
                _TOOL_CHOICE.get(choice, choice) if isinstance(choice, str) else dict(choice)
            )
        elif request.output is not None:
            body["tool_choice"] = {"type": "any"} if request.tools else {"type": "tool", "name": OUTPUT_TOOL}
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.params:
            body.update(request.params)
        return body

    def stream(
        self, request: CompletionRequest, *, pause: PauseControl | None = None
    ) -> Observable[AssistantEvent]:
        """As ``Provider.stream``; with ``output=T``, the ``final_answer`` call streams as answer text."""
        events = super().stream(request, pause=pause)
        return events if request.output is None else events.pipe(_answer_as_text(OUTPUT_TOOL))


def _output_tool(spec: OutputSpec, tools: Any) -> dict[str, Any]:
    if not spec.is_object:
        raise ValueError(
            f"AnthropicMessages asks for structured output through a tool, whose input is a JSON object; "
            f"output={spec.name} is not one: use a Struct, a dataclass or a TypedDict"
        )
    if any(tool.name == OUTPUT_TOOL for tool in tools):
        raise ValueError(f"a tool named {OUTPUT_TOOL!r} clashes with the structured-output tool")
    description = (
        f"Give the final answer as a {spec.name}. Call this once, with the whole answer, when it is ready"
    )
    if tools:
        description += "; call the other tools first when you need them"
    return {"name": OUTPUT_TOOL, "description": description + ".", "input_schema": spec.schema}


def _answer_as_text(name: str) -> Callable[[Observable[AssistantEvent]], Observable[AssistantEvent]]:
    """The answer tool's call as the turn's text: its argument pieces as ``TextDelta``, no call events.

    A turn whose only call was the answer ends with ``end_turn``; a call of
    another tool stays what it is (the agent runs it). A ``ToolCall`` of the
    answer whose input streamed no pieces gives its input as one ``TextDelta``.
    """

    def _answer_as_text_(source: Observable[AssistantEvent]) -> Observable[AssistantEvent]:
        def subscribe(
            observer: abc.ObserverBase[AssistantEvent],
            scheduler: abc.SchedulerBase | None = None,
        ) -> abc.DisposableBase:
            answers: set[str] = set()  # the answer calls' internal ids
            shown: set[str] = set()  # those whose text went out
            other_calls = False

            def on_next(event: AssistantEvent) -> None:
                nonlocal other_calls
                if isinstance(event, ToolCallDelta):
                    if event.name == name or event.internal_call_id in answers:
                        answers.add(event.internal_call_id)
                        if event.arguments_delta:
                            shown.add(event.internal_call_id)
                            observer.on_next(TextDelta(text=event.arguments_delta))
                        return
                elif isinstance(event, ToolCall):
                    if event.name == name:
                        answers.add(event.internal_call_id)
                        if event.internal_call_id not in shown:
                            arguments = event.arguments
                            text = (
                                arguments
                                if isinstance(arguments, str)
                                else msgspec.json.encode(arguments).decode()
                            )
                            observer.on_next(TextDelta(text=text))
                        return
                    other_calls = True
                elif isinstance(event, Final):
                    if event.finish_reason == "tool_use" and answers and not other_calls:
                        event = msgspec.structs.replace(event, finish_reason="end_turn")
                    answers.clear()
                    shown.clear()
                    other_calls = False
                elif type(event) is StreamReset:
                    answers.clear()
                    shown.clear()
                    other_calls = False
                observer.on_next(event)

            return source.subscribe(on_next, observer.on_error, observer.on_completed, scheduler=scheduler)

        return Observable(subscribe)

    return _answer_as_text_


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
