"""The scripted model and server, by their first address: they live in ``rxllm.testing`` now.

``rxllm.testing`` is the test kit's package (``_writers``, ``_model``,
``_server``, the marble helpers, the pytest plugin); this module names the same
objects, so imports written for it keep working.
"""

from __future__ import annotations

from rxllm.testing._model import ModelScript, ModelTurn, ScriptedModel, replay_sse
from rxllm.testing._server import ReceivedRequest, Reply, ScriptedServer, ServerScript, ServerTurn
from rxllm.testing._writers import (
    DEFAULT_MODEL,
    DEFAULT_USAGE,
    Call,
    DialectName,
    ScriptExhaustedError,
    Turn,
    anthropic_sse,
    dialect_of,
    openai_chat_sse,
    openai_responses_sse,
    sse_bytes,
)

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_USAGE",
    "Call",
    "DialectName",
    "ModelScript",
    "ModelTurn",
    "ReceivedRequest",
    "Reply",
    "ScriptExhaustedError",
    "ScriptedModel",
    "ScriptedServer",
    "ServerScript",
    "ServerTurn",
    "Turn",
    "anthropic_sse",
    "dialect_of",
    "openai_chat_sse",
    "openai_responses_sse",
    "replay_sse",
    "sse_bytes",
]
