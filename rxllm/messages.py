"""Chat history: ``Message`` and its content parts, independent of any provider.

A message is a role and a tuple of parts. Each provider turns history into its
own wire format (OpenAI Chat: ``tool_calls`` on the assistant message and one
``tool`` message per result; Responses: ``function_call`` and
``function_call_output`` items; Anthropic: ``tool_use`` and ``tool_result``
blocks, thinking blocks with signatures), so one history serves them all::

    history = [Message.user("What is 2 + 2?"), Message.assistant("4")]
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

__all__ = [
    "Message",
    "Part",
    "ReasoningPart",
    "Role",
    "TextPart",
    "ToolCallPart",
    "ToolResultPart",
]

Role = Literal["system", "user", "assistant", "tool"]


class TextPart(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag="text"):
    """Plain text."""

    text: str


class ReasoningPart(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag="reasoning"):
    """A reasoning block the model produced, kept to be sent back where the provider asks for it."""

    text: str
    id: str | None = None
    signature: str | None = None
    encrypted_content: str | None = None


class ToolCallPart(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag="tool_call"):
    """A tool call the assistant made; ``arguments`` as parsed JSON (or the raw string)."""

    id: str
    call_id: str
    name: str
    arguments: Any = msgspec.field(default_factory=dict)


class ToolResultPart(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag="tool_result"):
    """The result of one tool call, paired with it by ``call_id``."""

    call_id: str
    name: str
    content: str
    is_error: bool = False


Part = TextPart | ReasoningPart | ToolCallPart | ToolResultPart


class Message(msgspec.Struct, frozen=True, kw_only=True):
    """One entry of a conversation."""

    role: Role
    content: tuple[Part, ...] = ()

    @classmethod
    def system(cls, text: str) -> Message:
        return cls(role="system", content=(TextPart(text=text),))

    @classmethod
    def user(cls, text: str) -> Message:
        return cls(role="user", content=(TextPart(text=text),))

    @classmethod
    def assistant(cls, text: str) -> Message:
        return cls(role="assistant", content=(TextPart(text=text),))

    @property
    def text(self) -> str:
        """The text parts joined, without reasoning or tool parts."""
        return "".join(part.text for part in self.content if isinstance(part, TextPart))
