"""The built wheel: what a user installs from PyPI."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_wheel_ships_the_license_the_typing_marker_and_no_tests(tmp_path: Path) -> None:
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = tmp_path.glob("rxllm-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    licenses = [name for name in names if name.endswith("/LICENSE")]
    assert licenses and "MIT License" in zipfile.ZipFile(wheel).read(licenses[0]).decode()
    assert "rxllm/py.typed" in names
    metadata = next(name for name in names if name.endswith("/METADATA"))
    assert "License-Expression: MIT" in zipfile.ZipFile(wheel).read(metadata).decode()
    assert not [name for name in names if name.startswith(("tests/", "benchmarks/", "examples/"))]
