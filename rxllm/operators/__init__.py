"""Composable operators over event Observables, one per module (as RxPY does).

::

    sse_source ─► parse_chunk(dialect) ─► accumulate_tool_calls() ─► dedupe_final() ─► pause_gate(control)

``collect_response()`` folds a turn into one ``CompletionResponse``; ``parse_output(T)`` turns
a turn's JSON answer into ``PartialOutput`` events and one validated ``Output``; ``agent(model, ...)``
answers a stream of prompts with multi-turn, tool-using runs.

The operators of a turn keep each subscription's state in one slotted object
(a ``Link``) rather than in closures, and subscribe each other directly: a turn
is subscribed a thousand times at once in a busy process, and Rx's wrappers
would otherwise be most of what a stream costs (see ``rxllm.transport._fusion``).
"""

from rxllm.operators._accumulate_tool_calls import accumulate_tool_calls
from rxllm.operators._agent import DEFAULT_MAX_TURNS, agent
from rxllm.operators._collect_response import collect_response
from rxllm.operators._dedupe_final import dedupe_final
from rxllm.operators._parse_chunk import parse_chunk
from rxllm.operators._parse_output import parse_output
from rxllm.operators._pause_gate import pause_gate

__all__ = [
    "DEFAULT_MAX_TURNS",
    "accumulate_tool_calls",
    "agent",
    "collect_response",
    "dedupe_final",
    "parse_chunk",
    "parse_output",
    "pause_gate",
]
