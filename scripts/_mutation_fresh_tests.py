"""A pytest plugin scripts/mutation gives mutmut's runs: each pytest session imports the test modules anew.

mutmut runs several pytest sessions in one process (collecting, the stats run, the clean run, then a forked
child per mutant). pytest drops ``conftest`` from ``sys.modules`` before it imports a conftest.py that is not
in a package (so that two such files cannot shadow each other), so every session gets a new tests/conftest.py,
while the test modules a previous session imported stay cached and keep the names their ``from conftest
import ...`` took from the old one. A test then hands the old ``Reply`` to the new ``sse_server`` fixture,
whose ``isinstance(reply, Reply)`` is false ("'Reply' object is not iterable"). Forgetting, at the start of
each session, every module imported from tests/ makes each session's tests and conftest one set again, as in
an ordinary ``pytest`` run.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent / "tests"


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests() -> None:
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if file is not None and Path(file).resolve().is_relative_to(TESTS):
            del sys.modules[name]
