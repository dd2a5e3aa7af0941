"""rxllm's import graph is a straight line of floors: no module imports one that imports it back.

Module-level imports count, those under ``if TYPE_CHECKING:`` too, but for the re-export of a name
loaded on first use (``from rxllm.transport._source import sse_source as sse_source`` beside the module's
``__getattr__``, as ``rxllm`` does for its names); an import inside a function is a load on first use
and does not count.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "rxllm"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def top_level_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    body = list(tree.body)
    for node in list(body):
        if isinstance(node, ast.If):  # if TYPE_CHECKING: ..., but the lazy names' re-exports
            body.extend(
                inner
                for inner in node.body
                if not (
                    isinstance(inner, ast.ImportFrom)
                    and all(alias.asname == alias.name for alias in inner.names)
                )
            )
    package = module_name(path).rsplit(".", 1)[0] if path.name != "__init__.py" else module_name(path)
    for node in body:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [base])
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in names if name == "rxllm" or name.startswith("rxllm.")}


def graph() -> dict[str, set[str]]:
    modules = {module_name(path): path for path in ROOT.rglob("*.py")}
    edges: dict[str, set[str]] = {}
    for name, path in modules.items():
        imported = {other for other in top_level_imports(path) if other in modules and other != name}
        # ``from rxllm.operators import _approval_step`` imports the submodule: not the package's __init__
        # (which Python has loaded by then, as for any submodule; the package's own imports are its edges).
        submodules = {other.rsplit(".", 1)[0] for other in imported if other.rsplit(".", 1)[0] in imported}
        edges[name] = imported - {package for package in submodules if name.startswith(package + ".")}
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    found: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for other in sorted(edges[node]):
            if state.get(other) == 1:
                found.append(stack[stack.index(other) :] + [other])
            elif other not in state:
                visit(other)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    return found


def test_no_module_imports_one_that_imports_it_back() -> None:
    # The package's own __init__ (lazy names, TYPE_CHECKING imports of everything) is the top floor.
    edges = {name: targets - {"rxllm"} for name, targets in graph().items()}
    assert cycles(edges) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_public_modules_by_their_first_addresses_are_the_transports() -> None:
    # rxllm.sse, rxllm.timeouts and rxllm.retry name rxllm.transport's modules (layout v2).
    import importlib

    for name in ("sse", "timeouts", "retry"):
        first = importlib.import_module(f"rxllm.{name}")
        home = importlib.import_module(f"rxllm.transport.{name}")
        assert first.__all__ == home.__all__, name
        for item in home.__all__:
            assert getattr(first, item) is getattr(home, item), f"rxllm.{name}.{item}"
