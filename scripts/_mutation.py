"""scripts/mutation's driver: run mutmut over each module with the tests that matter for it, print the scores.

Each module gets a directory of its own under build/mutation/ holding a copy of rxllm/, tests/ and a
pyproject.toml that is the project's plus a [tool.mutmut] section naming that module and its tests.
mutmut makes its mutants there (mutants/), so the work tree is never touched. The score counts a mutant
as killed when a test failed or timed out with it; an entry of scripts/mutation-equivalent.toml (a
mutant that cannot change behaviour, with the reason) is shown apart and left out of the total, and the
score is printed a second time with those counted as survivors.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import json
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build" / "mutation"
ALLOW = ROOT / "scripts" / "mutation-equivalent.toml"
GOAL = 0.90
# The plugin each run loads: every pytest session of mutmut's imports the tests anew (its docstring says why).
FRESH_TESTS = "_mutation_fresh_tests"

# The tests that matter for each module: its mirror first, then the tests that reach its other paths. Within
# these, mutmut runs for each mutant only the tests that call the mutated function.
MODULES: dict[str, list[str]] = {
    "rxllm/transport/_fusion.py": ["tests/test_fusion.py", "tests/test_lifecycle.py"],
    "rxllm/transport/_aio.py": ["tests/test_aio.py", "tests/test_lifecycle.py"],
    "rxllm/control.py": [
        "tests/test_control.py",
        "tests/operators/test_pause_gate.py",
        "tests/test_backpressure.py",
        "tests/test_lifecycle.py",
    ],
    "rxllm/operators/_pause_gate.py": [
        "tests/operators/test_pause_gate.py",
        "tests/test_control.py",
        "tests/test_fusion.py",
        "tests/test_lifecycle.py",
    ],
    "rxllm/transport/retry.py": [
        "tests/test_retry.py",
        "tests/test_midstream.py",
        "tests/test_reliability.py",
    ],
    "rxllm/transport/timeouts.py": [
        "tests/test_timeouts.py",
        "tests/test_retry.py",
        "tests/test_fusion.py",
        "tests/test_lifecycle.py",
    ],
    "rxllm/transport/sse.py": [
        "tests/test_sse_decoder.py",
        "tests/test_retry.py",
        "tests/test_secrets.py",
        "tests/test_backpressure.py",
        "tests/test_lifecycle.py",
        "tests/test_log.py",
    ],
    "rxllm/transport/_source.py": [
        "tests/test_source.py",
        "tests/test_lifecycle.py",
        "tests/test_backpressure.py",
        "tests/test_log.py",
        "tests/test_secrets.py",
        "tests/test_retry.py",
        "tests/providers/test_openai_chat.py",
        "tests/providers/test_openai_responses.py",
        "tests/providers/test_anthropic_messages.py",
        "tests/providers/test_accounting.py",
        "tests/test_reliability.py",
        "tests/test_midstream.py",
        "tests/test_timeouts.py",
        "tests/test_errors.py",
    ],
    "rxllm/operators/_accumulate_tool_calls.py": [
        "tests/operators/test_accumulate_tool_calls.py",
        # A provider's turn feeds its decoder's events to the same _ToolCalls (rxllm.providers._turn).
        "tests/providers/test_openai_chat.py",
        "tests/providers/test_openai_responses.py",
        "tests/providers/test_anthropic_messages.py",
        "tests/providers/test_conformance.py",
    ],
}

# A mutant may run this many times as long as its tests took in the clean run, plus the constant, before it
# counts as timed out (a hang the tests caught).
TIMEOUT_MULTIPLIER = 4.0
TIMEOUT_CONSTANT = 5.0

KILLED = {"killed", "timeout", "segfault"}
# mutmut's exit codes (mutmut.stats.status_by_exit_code), the ones a run gives.
STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", 34: "skipped"}
STATUS.update({36: "timeout", -24: "timeout", 24: "timeout", 152: "timeout", 255: "timeout"})
STATUS.update({-11: "segfault", -9: "segfault"})


@dataclass(frozen=True)
class Mutant:
    name: str
    status: str
    function: str  # as the allow-list names it: "Class.method" or "function"
    line: int  # in the original file
    original: str  # the first line the mutation changes, stripped
    mutated: str


@dataclass(frozen=True)
class Equivalent:
    function: str
    original: str
    mutated: str
    why: str


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help="module paths (default: all of them)")
    parser.add_argument("--jobs", type=int, default=2, help="mutants tested at once (default 2)")
    parser.add_argument("--keep", action="store_true", help="keep build/mutation/ after the run")
    args = parser.parse_args()
    modules = args.modules or list(MODULES)
    unknown = [module for module in modules if module not in MODULES]
    if unknown:
        parser.error(f"not in the map: {', '.join(unknown)}; known: {', '.join(MODULES)}")
    allowed = _allow_list()
    started = time.monotonic()
    below: list[str] = []
    for module in modules:
        if not _report(module, _run(module, args.jobs), allowed.get(module, [])):
            below.append(module)
    print(f"\nwhole run: {time.monotonic() - started:.0f} s")
    if not args.keep:
        shutil.rmtree(BUILD, ignore_errors=True)
    if below:
        print(f"below {GOAL:.0%} killed: {', '.join(below)}")
        return 1
    return 0


def _run(module: str, jobs: int) -> list[Mutant]:
    work = BUILD / Path(module).stem.lstrip("_")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", ".hypothesis", "real")
    shutil.copytree(ROOT / "rxllm", work / "rxllm", ignore=ignore)
    shutil.copytree(ROOT / "tests", work / "tests", ignore=ignore)
    shutil.copy2(ROOT / "scripts" / f"{FRESH_TESTS}.py", work / f"{FRESH_TESTS}.py")
    config = {
        "source_paths": ["rxllm"],
        "only_mutate": [module],
        "pytest_add_cli_args_test_selection": MODULES[module],
        "also_copy": [f"{FRESH_TESTS}.py"],
        "pytest_add_cli_args": ["-p", "no:cacheprovider", "-p", FRESH_TESTS, "-m", "not real"],
        "timeout_multiplier": TIMEOUT_MULTIPLIER,
        "timeout_constant": TIMEOUT_CONSTANT,
        "process_isolation": "fork",
        "use_git_change_detection": False,
        "track_dependencies": False,
    }
    section = "\n".join(f"{key} = {json.dumps(value)}" for key, value in config.items())
    project = (ROOT / "pyproject.toml").read_text()
    (work / "pyproject.toml").write_text(f"{project}\n[tool.mutmut]\n{section}\n")
    log = work / "mutmut.log"
    started = time.monotonic()
    with log.open("wb") as out:
        done = subprocess.run(
            [sys.executable, "-m", "mutmut", "run", "--max-children", str(jobs)],
            cwd=work,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    seconds = time.monotonic() - started
    meta = work / "mutants" / f"{module}.meta"
    if done.returncode != 0 or not meta.exists():
        tail = log.read_text(errors="replace")[-3000:]
        raise SystemExit(f"mutmut failed on {module} (exit {done.returncode}); the end of {log}:\n{tail}")
    print(f"\n{module}: mutmut ran {len(MODULES[module])} test files in {seconds:.0f} s")
    codes: dict[str, int | None] = json.loads(meta.read_text())["exit_code_by_key"]
    return _located(module, work / "mutants" / module, codes)


def _located(module: str, mutated_file: Path, codes: dict[str, int | None]) -> list[Mutant]:
    """Each mutant with the line of the original file it changes and that line before and after."""
    original_source = (ROOT / module).read_text()
    definitions = _functions(ast.parse(original_source))
    mutated_source = mutated_file.read_text()
    mutated_lines = mutated_source.splitlines()
    spans = {
        node.name: (node.lineno, node.end_lineno or node.lineno)
        for node in ast.walk(ast.parse(mutated_source))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    mutants: list[Mutant] = []
    prefix = module.removesuffix(".py").replace("/", ".") + "."
    for key, code in sorted(codes.items(), key=lambda item: _order(item[0])):
        local = key.removeprefix(prefix)  # "xǁLinkǁ__init____mutmut_2" or "x_subscribe_fused__mutmut_3"
        mangled, _, _number = local.rpartition("__mutmut_")
        function = mangled[2:] if mangled.startswith("x_") else ".".join(mangled[2:].split("ǁ")[:2])
        orig = _body(mutated_lines, spans[f"{mangled}__mutmut_orig"])
        body = _body(mutated_lines, spans[local])
        offset, before, after = _first_change(orig, body)
        mutants.append(
            Mutant(
                key,
                STATUS.get(code, "suspicious") if code is not None else "not checked",
                function,
                definitions[function] + offset,
                before,
                after,
            )
        )
    return mutants


def _order(key: str) -> tuple[str, int]:
    name, _, number = key.rpartition("__mutmut_")
    return name, int(number) if number.isdigit() else 0


def _functions(tree: ast.Module) -> dict[str, int]:
    """The ``def`` line of every function and method: ``{"name": line, "Class.name": line}``."""
    found: dict[str, int] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            found[node.name] = node.lineno
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    found[f"{node.name}.{item.name}"] = item.lineno
    return found


def _body(lines: list[str], span: tuple[int, int]) -> list[str]:
    first, last = span
    return lines[first:last]  # after the def line, which differs by name only


def _first_change(orig: list[str], body: list[str]) -> tuple[int, str, str]:
    matcher = difflib.SequenceMatcher(a=orig, b=body, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            before = orig[i1].strip() if i1 < i2 else "(nothing)"
            after = body[j1].strip() if j1 < j2 else "(line removed)"
            return 1 + i1, before, after
    return 1, "(no change found)", ""


def _allow_list() -> dict[str, list[Equivalent]]:
    allowed: dict[str, list[Equivalent]] = {}
    if not ALLOW.exists():
        return allowed
    for entry in tomllib.loads(ALLOW.read_text())["equivalent"]:
        allowed.setdefault(entry["module"], []).append(
            Equivalent(entry["function"], entry["original"], entry["mutated"], entry["why"])
        )
    return allowed


def _report(module: str, mutants: list[Mutant], allowed: list[Equivalent]) -> bool:
    equivalent: list[tuple[Mutant, Equivalent]] = []
    counted: list[Mutant] = []
    unused = list(allowed)
    for mutant in mutants:
        match = next(
            (
                entry
                for entry in allowed
                if (entry.function, entry.original, entry.mutated)
                == (mutant.function, mutant.original, mutant.mutated)
            ),
            None,
        )
        if match is not None and mutant.status not in KILLED:
            equivalent.append((mutant, match))
            if match in unused:
                unused.remove(match)
        else:
            counted.append(mutant)
    killed = [mutant for mutant in counted if mutant.status in KILLED]
    survivors = [mutant for mutant in counted if mutant.status not in KILLED]
    timeouts = sum(mutant.status == "timeout" for mutant in killed)
    score = len(killed) / len(counted) if counted else 1.0
    everything = len(killed) / len(mutants) if mutants else 1.0
    print(
        f"{module}: {len(killed)} / {len(counted)} killed ({score:.1%})"
        + (f", {timeouts} of them by a timeout" if timeouts else "")
        + (
            f"; {len(equivalent)} declared equivalent left out"
            f" (counting them as survivors: {len(killed)} / {len(mutants)}, {everything:.1%})"
            if equivalent
            else ""
        )
    )
    for mutant in survivors:
        where = f"{module}:{mutant.line} ({mutant.function})"
        print(f"  {mutant.status}: {where}: {mutant.original}  ->  {mutant.mutated}")
    for mutant, entry in equivalent:
        print(f"  equivalent: {module}:{mutant.line}: {mutant.original}  ->  {mutant.mutated}: {entry.why}")
    for entry in unused:
        print(f"  allow-list entry that matched no survivor (remove it?): {entry.function}: {entry.original}")
    return score >= GOAL


if __name__ == "__main__":
    sys.exit(main())
