"""The built wheel: what a user installs from PyPI, and the test kit working in a user's fresh project."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """This checkout built as a wheel, once for the module."""
    folder = tmp_path_factory.mktemp("wheel")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(folder), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    (path,) = folder.glob("rxllm-*.whl")
    yield path


def test_the_wheel_ships_the_license_the_typing_marker_and_no_tests(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    licenses = [name for name in names if name.endswith("/LICENSE")]
    assert licenses and "MIT License" in zipfile.ZipFile(wheel).read(licenses[0]).decode()
    assert "rxllm/py.typed" in names
    metadata = next(name for name in names if name.endswith("/METADATA"))
    assert "License-Expression: MIT" in zipfile.ZipFile(wheel).read(metadata).decode()
    assert not [name for name in names if name.startswith(("tests/", "benchmarks/", "examples/"))]


def test_the_readmes_test_examples_pass_in_a_fresh_project_with_the_testing_extra(
    wheel: Path, tmp_path: Path
) -> None:
    # A new venv of its own (not the suite's: no --system-site-packages) with only
    # `pip install "rxllm[testing]"`, from pip's cache or the registry. The suite's pip installs into
    # it (`pip --python`), which spares the venv a pip of its own; nothing is compiled ahead.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-compile"]
    installed = subprocess.run([*install, f"{wheel}[testing]"], capture_output=True, text=True, timeout=600)
    assert installed.returncode == 0, installed.stderr[-3000:]
    # The README's test examples, copied verbatim into the project's one test file; no pytest setting.
    section = README[README.index("## Testing your pipelines") :]
    section = section[: section.index("\n## ", 1)]
    examples = [code for code in re.findall(r"```python\n(.*?)```", section, re.S) if "def test_" in code]
    assert len(examples) == 3
    project = tmp_path / "project"
    project.mkdir()
    (project / "test_my_app.py").write_text("\n\n".join(examples))
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith(("PYTHON", "PYTEST"))
    }
    done = subprocess.run(
        [str(python), "-m", "pytest", "-W", "error", "-p", "no:cacheprovider"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
        env=environment,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert re.search(r"\n=+ 4 passed in [\d.]+s =+\n$", done.stdout), done.stdout
    assert "warning" not in done.stdout.lower()
    # Nothing else came in: the plugins pytest found are anyio's (async tests) and rxllm's (the fixture).
    assert re.search(r"\nplugins: anyio-[\d.]+, rxllm-[\d.]+\n", done.stdout), done.stdout
