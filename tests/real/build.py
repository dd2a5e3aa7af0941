"""Build (once) what the real-server tier runs: llama.cpp's ``llama-server``, llama-cpp-python's server.

Everything lives under ``$XDG_CACHE_HOME/rxllm-real/<version key>/`` (``~/.cache`` when
the variable is unset), keyed by the llama-cpp-python release whose sdist carries both
engines::

    llama_cpp_python-0.3.36.tar.gz     the sdist, from PyPI (pip download --no-binary :all:)
    src/llama_cpp_python-0.3.36/       it, unpacked; vendor/llama.cpp is llama.cpp itself
    llama-server-build/bin/llama-server   cmake, target llama-server only
    venv-py3.11/                       llama-cpp-python[server] (compiled by pip) and gguf
    model-<digest>.gguf                a tiny random-weight llama (tests/real/make_model.py)

Each step writes a ``.complete`` stamp when it succeeds and is skipped when the stamp is
there, so a warm machine pays seconds; an interrupted step starts again (cmake resumes
where it stopped). A lock file keeps two processes (two pytest runs, pytest and
``scripts/real-servers``) from building at once: the second waits, then finds the work done.
Progress goes to stderr; each tool's own output to ``logs/`` beside it.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

__all__ = ["LLAMA_CPP_PYTHON", "Built", "build", "cache_dir"]

LLAMA_CPP_PYTHON = "0.3.36"
"""The llama-cpp-python release: its sdist vendors the llama.cpp that ``llama-server`` is built from."""
GGUF = "0.19.0"
"""The ``gguf`` package that writes the model (the version vendored by that llama.cpp)."""

VERSION_KEY = f"llama-cpp-python-{LLAMA_CPP_PYTHON}"
SDIST_NAME = f"llama_cpp_python-{LLAMA_CPP_PYTHON}"
JOBS = "2"

LLAMA_SERVER_CMAKE_ARGS = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DBUILD_SHARED_LIBS=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    # The web UI: neither built (it needs npm) nor fetched prebuilt (it needs the internet).
    "-DLLAMA_BUILD_UI=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",
    "-DLLAMA_OPENSSL=OFF",
)
"""Only the server, statically linked; no tests, examples, web UI or TLS. (This llama.cpp has no
curl option any more: it fetches nothing unless asked to download a model.)"""

HERE = Path(__file__).resolve().parent
MAKE_MODEL = HERE / "make_model.py"
TEMPLATE = "Qwen-Qwen2.5-7B-Instruct.jinja"
VOCAB = "ggml-vocab-qwen2.gguf"


@dataclass(frozen=True)
class Built:
    """What the tier runs, all of it inside ``root``."""

    root: Path
    llama_server: Path
    python: Path
    """The venv's interpreter: ``python -m llama_cpp.server``."""
    model: Path


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/rxllm-real/<version key>``, ``~/.cache`` when the variable is unset or empty."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rxllm-real" / VERSION_KEY


def build(*, out: TextIO | None = None) -> Built:
    """Build whatever is missing (under the lock) and say where it is; progress to ``out`` (stderr)."""
    say = _Progress(out if out is not None else sys.stderr)
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with _locked(root / "build.lock", say):
        sdist = _sdist(root, say)
        source = _source(root, sdist, say)
        llama_cpp = source / "vendor" / "llama.cpp"
        llama_server = _llama_server(root, llama_cpp, say)
        python = _venv(root, sdist, say)
        model = _model(root, python, llama_cpp, say)
    if say.said:  # quiet when everything was there
        say(f"ready in {time.monotonic() - started:.1f} s: {root}")
    return Built(root=root, llama_server=llama_server, python=python, model=model)


class _Progress:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.said = False

    def __call__(self, message: str) -> None:
        if not self.said:
            print(file=self.out)  # off the line pytest's progress is on
        self.said = True
        print(f"rxllm-real: {message}", file=self.out, flush=True)


@contextmanager
def _locked(path: Path, say: _Progress) -> Iterator[None]:
    with path.open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"another process is building in {path.parent}; waiting for it")
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _done(stamp: Path, what: str) -> bool:
    """Whether the step whose stamp is ``stamp`` finished with the same inputs ``what``."""
    return stamp.is_file() and stamp.read_text() == what


def _run(
    command: Sequence[str | Path],
    *,
    log: Path,
    say: _Progress,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    percent: bool = False,
) -> None:
    """Run ``command`` with its output in ``log``; with ``percent``, echo cmake's progress every 10 %."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as sink:
        sink.write(f"$ {' '.join(map(str, command))}\n")
        sink.flush()
        process = subprocess.Popen(
            [str(part) for part in command],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **env} if env is not None else None,
            cwd=cwd,
        )
        assert process.stdout is not None
        shown = -10
        with process.stdout:
            for line in process.stdout:
                sink.write(line)
                found = re.match(r"\[\s*(\d+)%\]", line) if percent else None
                if found is not None and int(found[1]) >= shown + 10:
                    shown = int(found[1])
                    say(f"  {shown}%")
        code = process.wait()
    if code != 0:
        tail = "".join(log.read_text(errors="replace").splitlines(keepends=True)[-30:])
        raise RuntimeError(f"{command[0]} failed with exit code {code}; its log is {log}:\n{tail}")


def _sdist(root: Path, say: _Progress) -> Path:
    sdist = root / f"{SDIST_NAME}.tar.gz"
    if sdist.is_file():
        return sdist
    say(f"downloading the llama-cpp-python {LLAMA_CPP_PYTHON} sdist from PyPI")
    scratch = root / "download"
    shutil.rmtree(scratch, ignore_errors=True)
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-binary",
            ":all:",
            f"llama-cpp-python=={LLAMA_CPP_PYTHON}",
            "-d",
            scratch,
        ],
        log=root / "logs" / "download.log",
        say=say,
    )
    (scratch / sdist.name).replace(sdist)
    shutil.rmtree(scratch)
    return sdist


def _source(root: Path, sdist: Path, say: _Progress) -> Path:
    unpacked = root / "src"
    source = unpacked / SDIST_NAME
    stamp = unpacked / ".complete"
    if _done(stamp, sdist.name):
        return source
    say(f"unpacking {sdist.name}")
    shutil.rmtree(unpacked, ignore_errors=True)
    unpacked.mkdir()
    with tarfile.open(sdist) as archive:
        archive.extractall(unpacked, filter="data")
    stamp.write_text(sdist.name)
    return source


def _llama_server(root: Path, llama_cpp: Path, say: _Progress) -> Path:
    build_dir = root / "llama-server-build"
    binary = build_dir / "bin" / "llama-server"
    stamp = build_dir / ".complete"
    what = " ".join(LLAMA_SERVER_CMAKE_ARGS)
    if _done(stamp, what) and binary.is_file():
        return binary
    say(f"building llama-server from {llama_cpp} (about 15 min on 2 cores, once)")
    started = time.monotonic()
    log = root / "logs" / "llama-server.log"
    _run(["cmake", "-S", llama_cpp, "-B", build_dir, *LLAMA_SERVER_CMAKE_ARGS], log=log, say=say)
    _run(
        ["cmake", "--build", build_dir, "--target", "llama-server", "-j", JOBS],
        log=log,
        say=say,
        percent=True,
    )
    stamp.write_text(what)
    say(f"built llama-server in {time.monotonic() - started:.0f} s")
    return binary


def _venv(root: Path, sdist: Path, say: _Progress) -> Path:
    venv = root / f"venv-py{sys.version_info.major}.{sys.version_info.minor}"
    python = venv / "bin" / "python"
    requirements = [f"llama-cpp-python[server] @ {sdist.as_uri()}", f"gguf=={GGUF}"]
    stamp = venv / ".complete"
    if _done(stamp, "\n".join(requirements)) and python.is_file():
        return python
    say(f"installing llama-cpp-python[server] and gguf into {venv} (pip compiles it: about 8 min, once)")
    started = time.monotonic()
    log = root / "logs" / "venv.log"
    if not python.is_file():
        _run([sys.executable, "-m", "venv", venv], log=log, say=say)
    _run(
        [python, "-m", "pip", "install", "--disable-pip-version-check", *requirements],
        log=log,
        say=say,
        # No multimodal library; cmake inside pip's build on the same two jobs.
        env={"CMAKE_ARGS": "-DLLAVA_BUILD=OFF", "CMAKE_BUILD_PARALLEL_LEVEL": JOBS},
    )
    stamp.write_text("\n".join(requirements))
    say(f"installed in {time.monotonic() - started:.0f} s")
    return python


def _model(root: Path, python: Path, llama_cpp: Path, say: _Progress) -> Path:
    # Named by the generator's own bytes: change make_model.py and a new model is made.
    digest = hashlib.sha256(MAKE_MODEL.read_bytes()).hexdigest()[:12]
    model = root / f"model-{digest}.gguf"
    if model.is_file():
        return model
    for stale in root.glob("model-*.gguf"):
        stale.unlink()  # made by an earlier make_model.py
    say(f"generating the tiny random model {model.name}")
    started = time.monotonic()
    _run(
        [
            python,
            MAKE_MODEL,
            llama_cpp / "models" / VOCAB,
            llama_cpp / "models" / "templates" / TEMPLATE,
            model,
        ],
        log=root / "logs" / "model.log",
        say=say,
    )
    say(f"generated in {time.monotonic() - started:.0f} s")
    return model
