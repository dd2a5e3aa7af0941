"""Shared type aliases and protocols.

A *dialect* is how one provider API speaks server-sent events; ``parse_chunk``
takes one and knows nothing else about providers::

    parser = dialect.parser()          # fresh state for each subscription
    events = parser.feed(event, data)  # one SSE event -> raw chunk events
    parser.done                        # the end marker arrived: stop reading
    parser.finished                    # a clean end of the body now is a whole turn

``ToolSpec`` (what a request needs of a tool) is defined in ``rxllm.request``,
below this module, and named here too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, TypeAlias

from reactivex import Observable

from rxllm.control import PauseControl
from rxllm.events import AgentEvent, AssistantEvent, ChunkEvent
from rxllm.request import CompletionRequest, ToolSpec

__all__ = [
    "AgentOperator",
    "ChunkParser",
    "Dialect",
    "EventOperator",
    "StreamModel",
    "ToolSpec",
]

EventOperator: TypeAlias = Callable[[Observable[AssistantEvent]], Observable[AssistantEvent]]
"""An operator from assistant events to assistant events, for ``.pipe()``."""

AgentOperator: TypeAlias = Callable[[Observable[str]], Observable[AgentEvent]]
"""The agent operator: user prompts in, agent events out."""


class ChunkParser(Protocol):
    """The state of one stream's decoding; one per subscription."""

    @property
    def done(self) -> bool:
        """The provider's end marker arrived (``[DONE]``, ``message_stop``...): nothing more to read."""
        ...

    @property
    def finished(self) -> bool:
        """The turn is whole: if the body ends now, that is a clean end, not a truncation."""
        ...

    def feed(self, event: str, data: str) -> Sequence[ChunkEvent]:
        """Decode one server-sent event (its ``event:`` name and joined ``data:``).

        Raises ``ChunkDecodeError`` for data that is not the documented JSON and
        ``ProviderError`` for an error the provider sends inside the stream.
        """
        ...


class Dialect(Protocol):
    """One provider API's stream format."""

    @property
    def name(self) -> str: ...

    @property
    def end_of_turn(self) -> str:
        """What a whole turn ends with, for truncation messages (``"message_stop"``)."""
        ...

    def parser(self) -> ChunkParser: ...


class StreamModel(Protocol):
    """What the agent needs of a model: one completion turn as an Observable (every provider has it)."""

    def stream(
        self, request: CompletionRequest, *, pause: PauseControl | None = None
    ) -> Observable[AssistantEvent]: ...
