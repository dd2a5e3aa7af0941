"""Hooks: watch and steer an agent run from the inside.

Subclass ``Hook`` and override the methods you need; each is async and
returns ``None`` to continue. ``Terminate(reason)`` from any of them stops the
run (observers get ``PromptCancelledError``, no further request is sent);
``Skip(reason)`` from ``on_tool_call`` does not run the tool and gives the model
the reason as its result::

    class Guard(Hook):
        async def on_tool_call(self, name, call_id, internal_call_id, arguments):
            if name == "delete_file":
                return Skip("deleting files is not allowed here")
            return None

Methods that a subclass does not override are never called, so a hook costs
nothing for the events it does not watch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rxllm.events import Final
from rxllm.messages import Message

__all__ = ["Hook", "Skip", "Terminate"]


@dataclass(frozen=True)
class Terminate:
    """Stop the run; ``reason`` reaches observers in ``PromptCancelledError``."""

    reason: str


@dataclass(frozen=True)
class Skip:
    """Do not run this tool; ``reason`` becomes its result, which the model sees."""

    reason: str


class Hook:
    """Base class: every method continues by default."""

    async def on_completion_call(self, prompt: str, history: Sequence[Message]) -> Terminate | None:
        """Before each model request; ``history`` is what the request sends."""
        return None

    async def on_text_delta(self, delta: str, aggregated: str) -> Terminate | None:
        """For each piece of text; ``aggregated`` is the turn's text so far, this piece included."""
        return None

    async def on_tool_call_delta(
        self, id: str, internal_call_id: str, name: str | None, delta: str
    ) -> Terminate | None:
        """For each piece of a tool call as it streams."""
        return None

    async def on_stream_reset(self, attempt: int, reason: str) -> Terminate | None:
        """When the provider sends the turn again mid-stream (``midstream_retries``), before the resend.

        Discard what the turn streamed so far: its text and tool-call deltas
        belonged to the broken attempt (``on_text_delta``'s ``aggregated``
        starts again). ``attempt`` is the number the next request will have;
        ``Terminate`` stops the run and the resend is never sent.
        """
        return None

    async def on_tool_call(
        self, name: str, call_id: str, internal_call_id: str, arguments: Any
    ) -> Terminate | Skip | None:
        """Before a tool runs."""
        return None

    async def on_tool_result(
        self, name: str, call_id: str, internal_call_id: str, arguments: Any, result: str
    ) -> Terminate | None:
        """After a tool ran (or failed, or was skipped), with the result text the model will see."""
        return None

    async def on_turn_finish(self, prompt: str, final: Final) -> Terminate | None:
        """When a turn's stream ended, before its tools run."""
        return None

    def overrides(self, method: str) -> bool:
        """Whether this hook's class overrides ``method`` (so the agent calls it)."""
        return getattr(type(self), method) is not getattr(Hook, method)
