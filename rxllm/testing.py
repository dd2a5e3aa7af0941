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
  installed: ``rxllm._pytest_plugin``, which loads nothing until a test uses it)
  starts servers on a thread of their own and stops them after the test, so
  sync and async tests alike can use them (``pip install "rxllm[testing]"``
  brings pytest and anyio, whose plugin runs ``@pytest.mark.anyio`` tests)::

      def test_my_client(scripted_server):
          server = scripted_server([Turn(text=["Hi"])], dialect="anthropic")
          ...
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from reactivex import Observable
from reactivex.notification import OnError, OnNext
from reactivex.testing.marbles import marbles_testing
from reactivex.testing.recorded import Recorded

from rxllm.providers.scripted import (
    Call,
    ReceivedRequest,
    Reply,
    ScriptedModel,
    ScriptedServer,
    ScriptExhaustedError,
    Turn,
    anthropic_sse,
    dialect_of,
    openai_chat_sse,
    openai_responses_sse,
    replay_sse,
    sse_bytes,
)

__all__ = [
    "Call",
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


def event_values(**events: object) -> dict[str | float, object]:
    """The lookup of marble names to events, typed as reactivex's marble functions want it.

    ``event_values(a=TextDelta(text="Hi"), f=Final())`` is ``{"a": ..., "f": ...}``.
    """
    lookup: dict[str | float, object] = {}
    lookup.update(events)
    return lookup


def timeline(records: Sequence[Recorded[Any]], values: dict[str | float, object] | None = None) -> list[str]:
    """Recorded notifications as readable lines: ``"2: a"``, ``"7: |"``, ``"9: # ValueError: boom"``.

    Times count marble characters from the subscription; an event found in
    ``values`` is shown by its marble name, any other by its repr.
    """
    __tracebackhide__ = True
    names = {id(value): name for name, value in (values or {}).items()}
    by_value = list((values or {}).items())
    lines: list[str] = []
    for record in records:
        at = f"{record.time - 200:g}"
        notification = record.value
        if isinstance(notification, OnNext):
            value = notification.value
            name = names.get(id(value))
            if name is None:
                name = next((str(key) for key, known in by_value if _same(known, value)), None)
            lines.append(f"{at}: {name if name is not None else repr(value)}")
        elif isinstance(notification, OnError):
            error = notification.exception
            lines.append(f"{at}: # {type(error).__name__}: {error}")
        else:
            lines.append(f"{at}: |")
    return lines


def _same(known: object, value: object) -> bool:
    try:
        return bool(known == value)
    except Exception:  # noqa: BLE001 - values that cannot compare are simply not the same
        return False


def assert_marbles(
    operator: Callable[[Observable[Any]], Observable[Any]],
    source: str,
    expected: str,
    values: dict[str | float, object] | None = None,
    error: Exception | None = None,
    *,
    expected_error: Exception | None = None,
) -> None:
    """Pipe a cold marble ``source`` through ``operator`` and check the result against ``expected``.

    ``error`` is what ``#`` means in ``source``; ``expected_error`` what it means in
    ``expected`` (``error`` when not given). Besides what reactivex's marble
    comparison checks (error messages only), an error must also be of the
    expected type. A mismatch fails with both timelines, one notification a line.
    """
    __tracebackhide__ = True
    wanted_error = expected_error if expected_error is not None else error
    with marbles_testing() as (start, cold, _hot, exp):
        got = start(cold(source, values, error).pipe(operator))
        want = exp(expected, values, wanted_error)
    same = got == want and all(
        type(g.value.exception) is type(w.value.exception)
        for g, w in zip(got, want, strict=True)
        if isinstance(g.value, OnError) and isinstance(w.value, OnError)
    )
    if not same:
        shown = "\n".join(
            [
                f"marbles differ for source {source!r}",
                "expected:",
                *(f"  {line}" for line in timeline(want, values)),
                "got:",
                *(f"  {line}" for line in timeline(got, values)),
            ]
        )
        raise AssertionError(shown)
