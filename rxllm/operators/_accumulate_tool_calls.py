"""Placeholder, replaced by the real operator."""

from typing import Any


def accumulate_tool_calls(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError
