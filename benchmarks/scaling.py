"""Does the work grow linearly? ``python -m benchmarks.scaling`` (no network).

* ``collect_response`` over 50k and 200k ``TextDelta`` events;
* the agent (``ScriptedModel``, the real SSE decoding pipe) over a tool turn then a text
  turn of 50k and 200k deltas;
* tool arguments of 1 MB from 10k fragments against 250 KB from 2.5k fragments, through
  the Chat decoding pipe (``SseDecoder``, ``parse_chunk``, ``accumulate_tool_calls``);
* an agent whose hook watches ``on_text_delta`` (its ``aggregated``, the text so far, is
  handed over with every delta) over 5k and 20k deltas of about 100 characters.
* ``parse_output`` over a structured answer of about 20 KB and 4x that, in deltas of 1-4
  tokens (``benchmarks.partial_json``'s realistic output): a ``PartialOutput`` per delta
  that changed the value, and the validated ``Output``.

Each size runs 3 times (the best is kept: this is about growth, not noise); the ratio
of the larger size's time to the smaller's should be near 4. Prints one JSON line, and
checks every result is exact.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

import msgspec
import reactivex

import rxllm
from benchmarks.partial_json import deltas_of, realistic_output
from rxllm import Agent, Final, FinalResponse, TextDelta, ToolCall
from rxllm.events import AgentEvent, Output, PartialOutput
from rxllm.operators import collect_response, parse_output
from rxllm.response import CompletionResponse
from rxllm.testing import Call, ScriptedModel, Turn, dialect_of, replay_sse

_PIECES = ("Hé", "llo", " wörld", ", ", "東京", " 🙂", " and", " so", " on", ".")


def _best(action: Callable[[], None], runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


def _collect(deltas: int) -> float:
    events: list[Any] = [TextDelta(text=_PIECES[i % 10]) for i in range(deltas)]
    events.append(Final(finish_reason="stop"))
    expected = "".join(_PIECES[i % 10] for i in range(deltas))

    def action() -> None:
        out: list[CompletionResponse] = []
        reactivex.from_iterable(events).pipe(collect_response()).subscribe(out.append)
        assert out[0].text == expected

    return _best(action)


@rxllm.tool
def lookup(key: str) -> str:
    """Look a key up.

    Args:
        key: The key.
    """
    return f"value of {key}"


def _agent(deltas: int) -> float:
    text = [_PIECES[i % 10] for i in range(deltas)]
    expected = "".join(text)

    def action() -> None:
        model = ScriptedModel([Turn(calls=[Call("lookup", {"key": "k"})]), Turn(text=text)])
        events = rxllm.run(Agent(model, tools=[lookup]).stream_prompt("go"))
        final = events[-1]
        assert isinstance(final, FinalResponse) and final.text == expected and final.turns == 2

    return _best(action)


class _Watching(rxllm.Hook):
    """Reads ``aggregated`` on every delta, as a live word count would."""

    def __init__(self) -> None:
        self.length = 0

    async def on_text_delta(self, delta: str, aggregated: str) -> None:
        self.length = len(aggregated)


def _hook_aggregated(deltas: int) -> float:
    text = [_PIECES[i % 10] * 16 for i in range(deltas)]
    expected = sum(len(piece) for piece in text)

    def action() -> None:
        hook = _Watching()
        model = ScriptedModel([[TextDelta(text=piece) for piece in text]])
        events = rxllm.run(Agent(model).stream_prompt("go", hook=hook))
        assert isinstance(events[-1], FinalResponse) and hook.length == expected

    return _best(action)


def _chat_tool_call(fragments: int, size: int) -> list[bytes]:
    notes = ("x" * 7 + "é") * (size // 8)
    arguments = msgspec.json.encode({"notes": notes}).decode()
    step = -(-len(arguments) // fragments)
    pieces = [arguments[i : i + step] for i in range(0, len(arguments), step)]

    def chunk(delta: Any, finish: str | None = None) -> bytes:
        body = {"id": "c", "object": "chat.completion.chunk", "model": "m",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}  # fmt: skip
        return b"data: " + msgspec.json.encode(body) + b"\n\n"

    head = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": ""}}
    out = [chunk({"tool_calls": [head]})]
    out += [chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}) for piece in pieces]
    out += [chunk({}, "tool_calls"), b"data: [DONE]\n\n"]
    return out


def _arguments(fragments: int, size: int) -> float:
    sse = _chat_tool_call(fragments, size)
    expected = msgspec.json.decode("".join(_decoded_arguments(sse)))
    dialect = dialect_of("openai")

    def action() -> None:
        calls: list[ToolCall] = []
        replay_sse(sse, dialect).subscribe(lambda e: calls.append(e) if isinstance(e, ToolCall) else None)
        assert len(calls) == 1 and calls[0].arguments == expected

    return _best(action)


def _decoded_arguments(sse: list[bytes]) -> list[str]:
    out = []
    for piece in sse[1:-2]:
        chunk = msgspec.json.decode(piece[6:])
        out.append(chunk["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"])
    return out


class _Item(msgspec.Struct):
    sku: str
    name: str
    quantity: int
    unit_price: float
    in_stock: bool
    tags: list[str]
    note: str | None


class _Order(msgspec.Struct):
    title: str
    summary: str
    items: list[_Item]
    total: float


def _parse_output(records: int) -> float:
    text = realistic_output(records)
    events: list[AgentEvent] = [TextDelta(text=piece) for piece in deltas_of(text)]
    events.append(Final(finish_reason="stop"))
    expected = msgspec.json.decode(text, type=_Order)

    def action() -> None:
        out: list[Any] = []
        reactivex.from_iterable(events).pipe(parse_output(_Order)).subscribe(out.append)
        assert out[-1] == Output(value=expected)
        assert sum(isinstance(event, PartialOutput) for event in out) > len(events) // 4

    return _best(action)


def run(smoke: bool) -> dict[str, Any]:
    small, large = (500, 2000) if smoke else (50_000, 200_000)
    frag_small, frag_large = (250, 1000) if smoke else (2_500, 10_000)
    size_small, size_large = (25_000, 100_000) if smoke else (250_000, 1_000_000)
    out: dict[str, Any] = {}
    for name, measure, sizes in (
        ("collect_response", _collect, (small, large)),
        ("agent", _agent, (small, large)),
    ):
        a, b = measure(sizes[0]), measure(sizes[1])
        out[name] = {"sizes": list(sizes), "seconds": [a, b], "ratio": b / a}
    hooked = (500, 2000) if smoke else (5_000, 20_000)
    a, b = _hook_aggregated(hooked[0]), _hook_aggregated(hooked[1])
    out["hook_aggregated"] = {"sizes": list(hooked), "seconds": [a, b], "ratio": b / a}
    a = _arguments(frag_small, size_small)
    b = _arguments(frag_large, size_large)
    out["tool_arguments"] = {
        "sizes": [f"{size_small} B / {frag_small} fragments", f"{size_large} B / {frag_large} fragments"],
        "seconds": [a, b],
        "ratio": b / a,
    }
    records = 8 if smoke else 100
    a, b = _parse_output(records), _parse_output(records * 4)
    sizes = [f"{len(realistic_output(n).encode())} B" for n in (records, records * 4)]
    out["parse_output"] = {"sizes": sizes, "seconds": [a, b], "ratio": b / a}
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    print(json.dumps(run(args.smoke)))


if __name__ == "__main__":
    main()
