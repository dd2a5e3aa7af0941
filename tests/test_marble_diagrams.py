"""Every marble diagram rxllm shows is valid RxPY marble syntax, and says what the operator does.

Diagrams are found in three places: the ``.. marble::`` blocks of every
docstring under ``rxllm/``, the marble column of the README's operator table,
and the marble strings of the README's code blocks (``assert_marbles(...)``).
Each is parsed by RxPY's own parser (``reactivex.testing.marbles``). Where a
docstring diagram states a source, an operator and a result, the operator runs
over the source in virtual time and must give exactly the result; each README
table row must be one of its operator's docstring examples, so it is checked
with it. The README's code blocks run as tests elsewhere (tests/test_testing.py
and, in a fresh project, tests/test_packaging.py).

The convention of a ``.. marble::`` block::

    .. marble::
        :alt: dedupe_final

        -a-f-g-|                the source; one line per subscription for an operator that
        [ dedupe_final() ]      resubscribes; a line whose values are all callables is a
        -a-----(h,|)            timeline of actions (P = control.pause); then the operator, the result

        -a-f-#                  # = ConnectionResetError("peer closed")
        [ dedupe_final() ]
        -a---#                  (a result's # without a note is the source's error)

        :values: a = TextDelta(text="Hi"); f = Final(finish_reason="stop")
                 g = Final(usage=Usage(input_tokens=3, output_tokens=2, total_tokens=5)); h = f.updated(g)

* Examples are separated by blank lines. A diagram line is the marble (no
  spaces), then, after two or more spaces, a note for the reader. ``# = EXPR``
  in a note says what ``#`` is on that line: an exception (on a result line
  also a class, then only the type is checked, not the message); the
  expression ends at two spaces or the end of the line.
* ``:values:`` is Python, run for each example with rxllm's public names,
  ``rxllm.testing``'s and the module's own globals in scope; the names it
  defines are the diagrams' values (and the operator line may use them). A
  value name is one character, or a name ``:values:`` defines: ``(bc)`` would be
  one value named ``bc``, so it must be written ``(b,c)``.
* Ids rxllm mints (``rx_…``, ``call_…``) are written ``rx_1``, ``call_1``, … in
  order of appearance.
* Lines with no operator are shapes (what a subscriber sees): parsed, not run.
"""

from __future__ import annotations

import ast
import importlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import pytest
import reactivex
from reactivex import Observable
from reactivex.notification import OnCompleted, OnError, OnNext
from reactivex.observable.marbles import parse
from reactivex.testing.marbles import marbles_testing
from reactivex.testing.recorded import Recorded

import rxllm
import rxllm.operators
import rxllm.testing
from rxllm.events import ToolCall, ToolCallDelta, ToolResult

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
MARBLE = re.compile(r"[-a-zA-Z0-9_.()|#,]+")
OPERATOR = re.compile(r"\[ (.+) \]")
MINTED = re.compile(r"(rx|call)_[0-9a-f]{32}")


# -- finding the diagrams ---------------------------------------------------------------------------


@dataclass
class Line:
    marble: str
    note: str = ""

    @property
    def error_expression(self) -> str | None:
        # ``# = EXPR`` anywhere in the note, up to two spaces or the end (prose may stand around it)
        _, found, rest = self.note.partition("# = ")
        return rest.split("  ")[0] if found else None


@dataclass
class Example:
    inputs: list[Line] = field(default_factory=list)
    operator: str | None = None
    result: Line | None = None


@dataclass
class Block:
    where: str  # module:line
    module: str
    alt: str
    values: str
    examples: list[Example]

    def __str__(self) -> str:
        return f"{self.where} ({self.alt})"


def docstring_blocks() -> Iterator[Block]:
    for path in sorted((ROOT / "rxllm").rglob("*.py")):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        lines = path.read_text(encoding="utf-8").splitlines()
        for number, text in enumerate(lines):
            if text.strip() == ".. marble::":
                yield _block(f"{path.relative_to(ROOT)}:{number + 1}", module, lines, number)


def _block(where: str, module: str, lines: list[str], start: int) -> Block:
    directive_indent = len(lines[start]) - len(lines[start].lstrip())
    body: list[str] = []
    for text in lines[start + 1 :]:
        if text.strip() and len(text) - len(text.lstrip()) <= directive_indent:
            break
        body.append(text)
    while body and not body[-1].strip():
        body.pop()
    if body and body[-1].rstrip().endswith('"""'):
        body[-1] = body[-1].rstrip()[:-3]
    indent = min(len(text) - len(text.lstrip()) for text in body if text.strip())
    options: dict[str, list[str]] = {}
    examples: list[Example] = [Example()]
    last_option: str | None = None
    for text in body:
        if not text.strip():
            last_option = None
            if examples[-1].inputs or examples[-1].result:
                examples.append(Example())
            continue
        deeper = len(text) - len(text.lstrip()) > indent
        stripped = text.strip()
        option = re.fullmatch(r":(\w+):\s*(.*)", stripped)
        if option:
            last_option = option[1]
            options.setdefault(last_option, []).append(option[2])
        elif deeper:
            if last_option is not None:
                options[last_option].append(stripped)
            # else: the previous line's note goes on; nothing to check
        elif (operator := OPERATOR.fullmatch(stripped)) is not None:
            assert examples[-1].operator is None, f"{where}: two operator lines in one example"
            examples[-1].operator = operator[1]
        else:
            parts = re.split(r" {2,}", stripped, maxsplit=1)
            line = Line(parts[0], parts[1].strip() if len(parts) > 1 else "")
            if examples[-1].operator is None:
                examples[-1].inputs.append(line)
            else:
                assert examples[-1].result is None, f"{where}: a line after the result"
                examples[-1].result = line
    examples = [example for example in examples if example.inputs or example.result]
    return Block(
        where=where,
        module=module,
        alt=" ".join(options.get("alt", ["?"])),
        values="\n".join(options.get("values", [])),
        examples=examples,
    )


BLOCKS = list(docstring_blocks())


# -- running them ------------------------------------------------------------------------------------


def namespace(block: Block) -> tuple[dict[str, Any], dict[str | float, object]]:
    """The names a block's ``:values:`` and operator lines see, and the values it defines."""
    scope: dict[str, Any] = {}
    scope.update(vars(importlib.import_module(block.module)))
    for module in (rxllm.operators, rxllm.testing, rxllm):
        scope.update({name: getattr(module, name) for name in module.__all__})
    scope["msgspec"] = msgspec
    before = set(scope)
    exec(compile(block.values, f"{block.where} :values:", "exec"), scope)
    lookup: dict[str | float, object] = {name: scope[name] for name in scope if name not in before}
    return scope, lookup


def parsed(line: Line, lookup: dict[str | float, object], block: Block) -> list[tuple[Any, Any]]:
    """RxPY's parse of one diagram line, after checking the line is a marble and its names are known."""
    assert MARBLE.fullmatch(line.marble), f"{block}: {line.marble!r} is not a marble diagram"
    messages = parse(line.marble, raise_stopped=True)
    for _, notification in messages:
        if isinstance(notification, OnNext) and isinstance(notification.value, str):
            name = notification.value
            assert len(name) == 1 or name in lookup, (
                f"{block}: {line.marble!r} names a value {name!r}: in RxPY that is one value, "
                "not several (a group's members are separated by commas: (b,c,|))"
            )
    return messages


def error_of(line: Line, scope: dict[str, Any], block: Block) -> Any:
    expression = line.error_expression
    return None if expression is None else eval(expression, scope)


def normalized(records: list[Recorded[Any]]) -> list[Recorded[Any]]:
    """Minted ids (``rx_<hex>``, ``call_<hex>``) renamed ``rx_1``, ``call_1``... in order of appearance."""
    names: dict[str, str] = {}

    def rename(value: str) -> str:
        if MINTED.fullmatch(value) and value not in names:
            prefix = value.split("_")[0]
            names[value] = f"{prefix}_{sum(1 for n in names.values() if n.startswith(prefix + '_')) + 1}"
        return names.get(value, value)

    out: list[Recorded[Any]] = []
    for record in records:
        notification = record.value
        if isinstance(notification, OnNext) and isinstance(
            notification.value, ToolCall | ToolCallDelta | ToolResult
        ):
            event = notification.value
            changes = {"id": rename(event.id), "internal_call_id": rename(event.internal_call_id)}
            if isinstance(event, ToolCall | ToolResult):
                changes["call_id"] = rename(event.call_id)
            notification = OnNext(msgspec.structs.replace(event, **changes))
        out.append(Recorded(record.time, notification))
    return out


def is_action_line(messages: list[tuple[Any, Any]], lookup: dict[str | float, object]) -> bool:
    nexts = [n for _, n in messages if isinstance(n, OnNext)]
    values = [lookup.get(n.value, n.value) for n in nexts]
    return bool(values) and len(nexts) == len(messages) and all(callable(v) for v in values)


def run(block: Block, example: Example) -> tuple[list[Recorded[Any]], list[Recorded[Any]], Any]:
    """The records the operator gives over the example's source, those the result line says, its error."""
    scope, lookup = namespace(block)
    assert example.operator is not None and example.result is not None
    operator = eval(example.operator, scope)
    source_errors: list[Any] = []
    with marbles_testing() as (start, cold, hot, exp):
        sources: list[Observable[Any]] = []
        for line in example.inputs:
            messages = parsed(line, lookup, block)
            if is_action_line(messages, lookup):
                hot(line.marble, lookup, None).subscribe(lambda action: action())
                continue
            error = error_of(line, scope, block)
            if any(isinstance(n, OnError) for _, n in messages):
                assert isinstance(error, Exception), f"{block}: {line.marble!r} needs a note '# = error'"
                source_errors.append(error)
            sources.append(cold(line.marble, lookup, error))
        made = iter(sources)
        source = sources[0] if len(sources) == 1 else reactivex.defer(lambda _: next(made))
        got = normalized(start(source.pipe(operator)))
        parsed(example.result, lookup, block)
        expected_error = error_of(example.result, scope, block)
        if expected_error is None and source_errors:
            expected_error = source_errors[-1]
        instance = expected_error if isinstance(expected_error, Exception) else None
        want = exp(example.result.marble, lookup, instance)
    return got, want, expected_error


def same(got: list[Recorded[Any]], want: list[Recorded[Any]], error: Any) -> bool:
    if len(got) != len(want):
        return False
    for g, w in zip(got, want, strict=True):
        if g.time != w.time or type(g.value) is not type(w.value):
            return False
        if isinstance(g.value, OnNext) and isinstance(w.value, OnNext) and not g.value.value == w.value.value:
            return False
        if isinstance(g.value, OnError):
            raised = g.value.exception
            if isinstance(error, type):
                if not isinstance(raised, error):
                    return False
            elif type(raised) is not type(error) or str(raised) != str(error):
                return False
    return True


def shown(records: list[Recorded[Any]]) -> str:
    def one(record: Recorded[Any]) -> str:
        value = record.value
        if isinstance(value, OnNext):
            return f"  {record.time - 200:g}: {value.value!r}"
        if isinstance(value, OnError):
            return f"  {record.time - 200:g}: # {type(value.exception).__name__}: {value.exception}"
        assert isinstance(value, OnCompleted)
        return f"  {record.time - 200:g}: |"

    return "\n".join(one(record) for record in records)


EXAMPLES = [
    pytest.param(block, example, id=f"{block.alt}-{number}")
    for block in BLOCKS
    for number, example in enumerate(block.examples, 1)
]


def test_the_docstrings_have_diagrams() -> None:
    # Every operator module's docstring carries one (STYLE.md); the finder sees them all.
    operators = {p.stem[1:] for p in (ROOT / "rxllm" / "operators").glob("_*.py") if p.stem != "__init__"}
    assert operators <= {block.module.rsplit(".", 1)[-1][1:] for block in BLOCKS}
    assert len(EXAMPLES) >= 20


@pytest.mark.parametrize(("block", "example"), EXAMPLES)
def test_a_docstring_diagram_parses_and_says_what_the_operator_does(block: Block, example: Example) -> None:
    if example.operator is None:  # shapes: parsed only
        assert example.inputs and example.result is None, f"{block}: an example without an operator"
        _, lookup = namespace(block)
        for line in example.inputs:
            parsed(line, lookup, block)
        return
    got, want, error = run(block, example)
    assert same(got, want, error), (
        f"{block}: the diagram says\n{shown(want)}\nbut {example.operator} gives\n{shown(got)}"
    )


# -- the README ----------------------------------------------------------------------------------------


def readme_table() -> list[tuple[str, list[str]]]:
    section = README[README.index("## Operators (`rxllm.operators`)") :]
    section = section[: section.index("\n## ", 1)]
    rows = []
    for row in re.findall(r"^\| `(\w+)\(.*?\| (.*) \|$", section, re.M):
        name, cell = row
        rows.append((name, [m.replace("\\|", "|") for m in re.findall(r"`((?:[^`\\]|\\.)+)`", cell)]))
    return rows


def test_the_readme_operator_table_shows_the_docstrings_diagrams() -> None:
    rows = readme_table()
    assert [name for name, _ in rows] == [
        "parse_chunk",
        "accumulate_tool_calls",
        "dedupe_final",
        "pause_gate",
        "collect_response",
        "parse_output",
        "agent",
    ]
    for name, cells in rows:
        marbles = [cell for cell in cells if MARBLE.fullmatch(cell) and set(cell) & set("-|#")]
        assert len(marbles) == 2, f"README row {name}: a source and a result, not {marbles}"
        for marble in marbles:
            parse(marble, raise_stopped=True)
        source, result = marbles
        pairs = [
            (example.inputs[0].marble, example.result.marble)
            for block in BLOCKS
            if block.alt == name
            for example in block.examples
            if example.result is not None
        ]
        assert (source, result) in pairs, f"README row {name}: {source} → {result} is none of {pairs}"


def readme_code_marbles() -> list[str]:
    found: list[str] = []
    for code in re.findall(r"```python\n(.*?)```", README, re.S):
        for node in ast.walk(ast.parse(code)):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                if node.func.id == "assert_marbles":
                    arguments = node.args[1:3]
                elif node.func.id in ("cold", "hot", "exp"):
                    arguments = node.args[:1]
                else:
                    continue
                found += [
                    a.value for a in arguments if isinstance(a, ast.Constant) and isinstance(a.value, str)
                ]
    return found


def test_the_readme_code_blocks_marbles_parse() -> None:
    marbles = readme_code_marbles()
    assert marbles == ["-a--f-|", "-A--f-|", "-a-#", "-A-#"]
    for marble in marbles:
        assert MARBLE.fullmatch(marble)
        parse(marble, raise_stopped=True)
