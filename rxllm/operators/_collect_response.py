"""Placeholder, replaced by the real operator."""

from typing import Any


def collect_response(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError
