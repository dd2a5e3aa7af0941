"""Partial JSON over a stream: ``python -m benchmarks.partial_json`` (``--smoke`` for toy sizes).

A model's structured answer arrives as deltas of 1-4 tokens; after each delta the
value so far is wanted (``PartialOutput``). Side by side, on the same texts and the
same deltas, in one run:

* ``rxllm``: ``rxllm.partial_json.PartialJsonParser``, which keeps its state and reads
  each character once;
* ``rxllm-deepcopy``: the same, with each value deep-copied (what emitting a value per
  delta costs without sharing the parts that closed);
* ``jiter``: ``jiter.from_json(text_so_far, partial_mode="trailing-strings")`` on each
  delta (the reference of partial modes; it re-parses the whole text so far);
* ``partial-json-parser``: ``partial_json_parser.loads(text_so_far)`` on each delta.

Two realistic outputs (an extraction result: a title, a summary and a list of records
with nested fields), one of a few KB and one 4x that: a parser that is linear in the
text takes about 4x the time on the larger, one that re-parses takes about 16x. The
libraries that are not installed (``pip install -e '.[bench]'``) are skipped. Each final
value is checked against ``msgspec.json.decode`` of the whole text. Prints a table and
one JSON line last. The cycle collector is off while timing, as ``timeit`` has it.
"""

from __future__ import annotations

import argparse
import copy
import gc
import importlib.util
import json
import random
import re
import time
from collections.abc import Callable
from typing import Any

import msgspec

from rxllm.partial_json import PartialJsonParser

_TOKEN = re.compile(r" ?[A-Za-z0-9]+| ?[^A-Za-z0-9 ]| +")

Parse = Callable[[list[str]], Any]


def realistic_output(records: int, seed: int = 7) -> str:
    """An extraction result with ``records`` records; about 190 bytes a record."""
    rng = random.Random(seed)
    words = "invoice line item widget gasket bolt steel copper blue large small Zürich 東京 café".split()
    items = [
        {
            "sku": f"SKU-{rng.randrange(10_000, 99_999)}",
            "name": " ".join(rng.choice(words) for _ in range(rng.randrange(2, 6))),
            "quantity": rng.randrange(1, 500),
            "unit_price": round(rng.uniform(0.5, 900.0), 2),
            "in_stock": rng.random() < 0.7,
            "tags": [rng.choice(words) for _ in range(rng.randrange(0, 4))],
            "note": None if rng.random() < 0.5 else 'says "ship by Friday"\nthen call',
        }
        for _ in range(records)
    ]
    document = {
        "title": "Purchase order 4471",
        "summary": " ".join(rng.choice(words) for _ in range(40)),
        "items": items,
        "total": round(sum(item["quantity"] * item["unit_price"] for item in items), 2),
    }
    return json.dumps(document, ensure_ascii=False, indent=1)


def deltas_of(text: str, seed: int = 11) -> list[str]:
    """``text`` cut into deltas of 1-4 pseudo-tokens (a word with its space, a punctuation mark)."""
    rng = random.Random(seed)
    tokens = _TOKEN.findall(text)
    # The tokenizer drops characters it does not know (newlines): put the text back exactly.
    rebuilt: list[str] = []
    position = 0
    for token in tokens:
        start = text.index(token, position)
        if start > position:
            rebuilt.append(text[position:start])
        rebuilt.append(token)
        position = start + len(token)
    if position < len(text):
        rebuilt.append(text[position:])
    out: list[str] = []
    i = 0
    while i < len(rebuilt):
        step = rng.randrange(1, 5)
        out.append("".join(rebuilt[i : i + step]))
        i += step
    assert "".join(out) == text
    return out


def _rxllm(deltas: list[str]) -> Any:
    parser = PartialJsonParser()
    for delta in deltas:
        parser.feed(delta)
    return parser.finish()


def _rxllm_deepcopy(deltas: list[str]) -> Any:
    parser = PartialJsonParser()
    for delta in deltas:
        value = parser.feed(delta)
        if value is not None:
            copy.deepcopy(value)
    return parser.finish()


def _jiter(deltas: list[str]) -> Any:
    import jiter

    buffer = bytearray()
    value = None
    for delta in deltas:
        buffer += delta.encode()
        value = jiter.from_json(bytes(buffer), partial_mode="trailing-strings")
    return jiter.from_json(bytes(buffer)) if buffer else value


def _partial_json_parser(deltas: list[str]) -> Any:
    import partial_json_parser

    pieces: list[str] = []
    value = None
    for delta in deltas:
        pieces.append(delta)
        text = "".join(pieces)
        pieces[:] = [text]
        value = partial_json_parser.loads(text)
    return value


CASES: dict[str, tuple[Parse, str | None]] = {
    "rxllm": (_rxllm, None),
    "rxllm-deepcopy": (_rxllm_deepcopy, None),
    "jiter": (_jiter, "jiter"),
    "partial-json-parser": (_partial_json_parser, "partial_json_parser"),
}


def _best(action: Callable[[], None], runs: int) -> float:
    """The best of ``runs`` timings, with the cycle collector off while timing (as ``timeit`` does).

    A collection's cost depends on everything else alive in the process, not on the parser.
    """
    times = []
    for _ in range(runs):
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter()
            action()
            times.append(time.perf_counter() - start)
        finally:
            gc.enable()
    return min(times)


def run(smoke: bool) -> dict[str, Any]:
    small_records = 4 if smoke else 20
    runs = 1 if smoke else 5
    texts = {"small": realistic_output(small_records), "large": realistic_output(small_records * 4)}
    deltas = {size: deltas_of(text) for size, text in texts.items()}
    expected = {size: msgspec.json.decode(text) for size, text in texts.items()}
    cases = [name for name, (_, needs) in CASES.items() if needs is None or importlib.util.find_spec(needs)]
    out: dict[str, Any] = {
        "sizes": {
            size: {"bytes": len(text.encode()), "deltas": len(deltas[size])} for size, text in texts.items()
        },
        "skipped": [name for name in CASES if name not in cases],
        "cases": {},
    }
    for name in cases:
        parse = CASES[name][0]
        seconds = {}
        for size in ("small", "large"):

            def action(size: str = size, parse: Parse = parse, name: str = name) -> None:
                value = parse(deltas[size])
                if value != expected[size]:
                    raise AssertionError(f"{name} rebuilt a different value from the {size} text")

            seconds[size] = _best(action, runs)
        out["cases"][name] = {
            "seconds": [seconds["small"], seconds["large"]],
            "us_per_delta": [seconds[size] / len(deltas[size]) * 1e6 for size in ("small", "large")],
            "ratio": seconds["large"] / seconds["small"],
        }
    return out


def table(result: dict[str, Any]) -> str:
    sizes = result["sizes"]
    head = (
        f"| parser | {sizes['small']['bytes']:,} B / {sizes['small']['deltas']} deltas (ms) "
        f"| {sizes['large']['bytes']:,} B / {sizes['large']['deltas']} deltas (ms) | ratio |"
    )
    lines = [head, "|---|---:|---:|---:|"]
    for name, entry in result["cases"].items():
        small, large = entry["seconds"]
        lines.append(f"| {name} | {small * 1e3:.2f} | {large * 1e3:.2f} | {entry['ratio']:.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    result = run(args.smoke)
    print(table(result))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
