"""The test kit: scripted models, SSE transcripts, a loopback replay server, marble helpers.

For tests of code built on rxllm, with no network and no API key::

    from rxllm.testing import Call, ScriptedModel, Turn

    model = ScriptedModel([Turn(calls=[Call("clock", {"tz": "UTC"})]), Turn(text=["It is noon."])])
    events = rxllm.run(Agent(model, tools=[clock]).stream_prompt("Time?"))
    assert events[-1].text == "It is noon."
    assert model.requests[1].messages[-1].role == "tool"

* ``ScriptedModel`` answers offline, turn by turn; ``ScriptedServer`` serves the
  same scripts over HTTP on 127.0.0.1 in any provider's wire format, for tests of
  the whole path (``server.provider()`` is a real provider pointed at it).
* ``Turn`` and ``Call`` describe a turn once; ``sse_bytes(turn, dialect)`` (and
  ``openai_chat_sse``, ``openai_responses_sse``, ``anthropic_sse``) write it as the
  provider's exact SSE bytes; ``replay_sse(pieces, dialect)`` decodes such bytes
  through the providers' pipe.
* ``event_values`` and ``assert_marbles`` make marble tests of operators over
  rxllm events short, with failures that say what happened when.
* The ``scripted_server`` pytest fixture (a pytest plugin registered when rxllm is
  installed: ``rxllm.testing._pytest_plugin``, which loads nothing until a test uses it)
  starts servers on a thread of their own and stops them after the test, so
  sync and async tests alike can use them (``pip install "rxllm[testing]"``
  brings pytest and anyio, whose plugin runs ``@pytest.mark.anyio`` tests)::

      def test_my_client(scripted_server):
          server = scripted_server([Turn(text=["Hi"])], dialect="anthropic")
          ...

The names load on first use (PEP 562), as ``rxllm``'s do: the pytest plugin
beside them imports this package in every session, and a session that uses none
of the kit loads none of it (no aiohttp, no reactivex).

Layout: ``_writers`` (``Turn``, ``Call``, the SSE writers), ``_model``
(``ScriptedModel``, ``replay_sse``), ``_server`` (``ScriptedServer``),
``_marbles`` (the marble helpers), ``_pytest_plugin`` (the fixture).
``rxllm.providers.scripted`` still names the scripted model and server.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rxllm._lazy import lazy_names

if TYPE_CHECKING:
    from rxllm.testing._marbles import assert_marbles as assert_marbles
    from rxllm.testing._marbles import event_values as event_values
    from rxllm.testing._marbles import timeline as timeline
    from rxllm.testing._model import ScriptedModel as ScriptedModel
    from rxllm.testing._model import replay_sse as replay_sse
    from rxllm.testing._server import ReceivedRequest as ReceivedRequest
    from rxllm.testing._server import Reply as Reply
    from rxllm.testing._server import ScriptedServer as ScriptedServer
    from rxllm.testing._writers import Call as Call
    from rxllm.testing._writers import DialectName as DialectName
    from rxllm.testing._writers import ScriptExhaustedError as ScriptExhaustedError
    from rxllm.testing._writers import Turn as Turn
    from rxllm.testing._writers import anthropic_sse as anthropic_sse
    from rxllm.testing._writers import dialect_of as dialect_of
    from rxllm.testing._writers import openai_chat_sse as openai_chat_sse
    from rxllm.testing._writers import openai_responses_sse as openai_responses_sse
    from rxllm.testing._writers import sse_bytes as sse_bytes

_WHERE: dict[str, str] = {
    "Call": "rxllm.testing._writers",
    "DialectName": "rxllm.testing._writers",
    "ReceivedRequest": "rxllm.testing._server",
    "Reply": "rxllm.testing._server",
    "ScriptExhaustedError": "rxllm.testing._writers",
    "ScriptedModel": "rxllm.testing._model",
    "ScriptedServer": "rxllm.testing._server",
    "Turn": "rxllm.testing._writers",
    "anthropic_sse": "rxllm.testing._writers",
    "assert_marbles": "rxllm.testing._marbles",
    "dialect_of": "rxllm.testing._writers",
    "event_values": "rxllm.testing._marbles",
    "openai_chat_sse": "rxllm.testing._writers",
    "openai_responses_sse": "rxllm.testing._writers",
    "replay_sse": "rxllm.testing._model",
    "sse_bytes": "rxllm.testing._writers",
    "timeline": "rxllm.testing._marbles",
}

__all__ = [
    "Call",
    "DialectName",
    "ReceivedRequest",
    "Reply",
    "ScriptExhaustedError",
    "ScriptedModel",
    "ScriptedServer",
    "Turn",
    "anthropic_sse",
    "assert_marbles",
    "dialect_of",
    "event_values",
    "openai_chat_sse",
    "openai_responses_sse",
    "replay_sse",
    "sse_bytes",
    "timeline",
]


__getattr__, __dir__ = lazy_names(__name__, _WHERE, globals(), __all__)
