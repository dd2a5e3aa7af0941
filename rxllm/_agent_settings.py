"""The settings of an agent run, shared by the agent operator (``operators._agent``) and its approval step."""

from __future__ import annotations

from typing import Any

from rxllm.approvals import Approvals
from rxllm.control import PauseControl
from rxllm.hooks import Hook
from rxllm.output import OutputSpec
from rxllm.tools import Tool
from rxllm.typing import StreamModel

__all__ = ["Settings"]


class Settings:
    """What an agent run is given: its model, tools, hooks and limits (``agent(...)``'s arguments)."""

    __slots__ = (
        "approvals",
        "hook",
        "max_turns",
        "model",
        "name",
        "output",
        "output_retries",
        "pause",
        "preamble",
        "request_options",
        "suspend",
        "tool_concurrency",
        "tools",
    )

    def __init__(
        self,
        *,
        model: StreamModel,
        tools: dict[str, Tool[..., Any]],
        preamble: str | None,
        hook: Hook | None,
        max_turns: int,
        tool_concurrency: int,
        pause: PauseControl | None,
        request_options: dict[str, Any],
        name: str | None = None,
        output: OutputSpec | None = None,
        output_retries: int = 1,
        approvals: Approvals | None = None,
        suspend: bool = False,
    ) -> None:
        self.model = model
        self.tools = tools
        self.preamble = preamble
        self.hook = hook
        self.max_turns = max_turns
        self.tool_concurrency = tool_concurrency
        self.pause = pause
        self.request_options = request_options
        self.name = name
        self.output = output
        self.output_retries = output_retries
        self.approvals = approvals
        self.suspend = suspend
