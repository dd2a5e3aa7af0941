"""``CompletionRequest``: what to ask the model, independent of any provider."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, Protocol

from rxllm.messages import Message

__all__ = ["CompletionRequest", "ToolSpec"]


class ToolSpec(Protocol):
    """What a request needs of a tool: a name, a description and a JSON schema of its parameters."""

    @property
    def name(self) -> str: ...

    @property
    def description(self) -> str: ...

    @property
    def parameters(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class CompletionRequest:
    """One completion turn's input.

    ``preamble`` is the system prompt; ``tool_choice`` is passed as the provider
    spells it (``"auto"``, ``"required"``, ``"none"``, or a provider-shaped
    object); ``params`` are extra body fields merged last, so they can set
    anything the provider accepts (``{"top_p": 0.9}``, ``{"reasoning_effort": "low"}``).

    ``output`` asks for structured output: a type msgspec validates (a Struct, a
    dataclass, a TypedDict, ``list[Item]``...), sent as each provider's own JSON
    schema option (see ``rxllm.output``); the answer streams as ``TextDelta``
    JSON text, which ``rxllm.operators.parse_output(output)`` turns into
    ``PartialOutput`` and ``Output`` events.
    """

    messages: Sequence[Message]
    _: KW_ONLY
    preamble: str | None = None
    tools: Sequence[ToolSpec] = ()
    temperature: float | None = None
    max_tokens: int | None = None
    tool_choice: str | Mapping[str, Any] | None = None
    params: Mapping[str, Any] | None = field(default=None)
    output: Any = None
