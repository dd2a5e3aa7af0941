"""Placeholder, replaced by the real operator."""

from typing import Any


def parse_chunk(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError
