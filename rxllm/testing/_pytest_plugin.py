"""rxllm's pytest plugin: the ``scripted_server`` fixture.

Registered through the ``pytest11`` entry point, so pytest imports this module
in every session of an environment where rxllm is installed. It imports nothing
of rxllm's until a test asks for the fixture: a session that never uses it does
not load rxllm (and ``pytest --cov=rxllm`` measures rxllm from its first real
import, so the report is right).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from rxllm.testing._server import ScriptedServer, ServerScript
    from rxllm.testing._writers import DialectName

__all__ = ["scripted_server"]


@pytest.fixture
def scripted_server() -> Iterator[Callable[..., ScriptedServer]]:
    """``scripted_server(turns, dialect=..., delay=..., model=...)`` starts a ``ScriptedServer`` on a thread.

    Every server started is stopped after the test; sync and async tests alike can use it.
    """
    from rxllm.testing import ScriptedServer

    started: list[ScriptedServer] = []

    def start(
        turns: Sequence[ServerScript],
        *,
        dialect: DialectName = "openai",
        delay: float = 0.0,
        model: str = "scripted-model",
    ) -> ScriptedServer:
        server = ScriptedServer(turns, dialect=dialect, delay=delay, model=model)
        server.__enter__()
        started.append(server)
        return server

    yield start
    for server in started:
        server.__exit__(None, None, None)
