"""Start and stop the real inference servers on free 127.0.0.1 ports.

``start_llama_server(built, logs)`` runs llama.cpp's C++ server (Chat Completions,
Responses, Anthropic Messages); ``start_llama_cpp_python(built, logs)`` runs
llama-cpp-python's FastAPI server (Chat Completions, grammar-constrained tool calls).
Each returns once the server answers its readiness endpoint (polled, with the process
watched: a server that dies while starting fails at once with its log's tail), and
``RunningServer.stop()`` ends the process it started (terminate, then kill).
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from real.build import Built

__all__ = ["MODEL_ALIAS", "RunningServer", "start_llama_cpp_python", "start_llama_server"]

MODEL_ALIAS = "tiny-random"
"""The model name both servers answer to (and report back as ``model``)."""
CONTEXT = 4096
READY_WITHIN = 120.0
LOG_POLL = 0.02
"""Seconds between two reads of a server's log while waiting for a line."""


@dataclass
class RunningServer:
    name: str
    origin: str
    """``http://127.0.0.1:<port>``: Anthropic's base URL; OpenAI's is ``origin + "/v1"``."""
    process: subprocess.Popen[bytes]
    log: Path
    _sink: IO[bytes]

    @property
    def v1(self) -> str:
        return f"{self.origin}/v1"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    async def logged(self, text: str, *, times: int, timeout: float = 60.0) -> int:
        """Wait until the log holds ``text`` at least ``times`` times; how many times it does."""
        async with asyncio.timeout(timeout):
            while (count := self.log_text().count(text)) < times:
                await asyncio.sleep(LOG_POLL)
        return count

    def stop(self) -> None:
        """End the process (SIGTERM, then SIGKILL after 10 s) and close its log."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._sink.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start_llama_server(built: Built, logs: Path, *, threads: int = 1) -> RunningServer:
    """llama.cpp's server with the model's own chat template (``--jinja``) and one slot."""
    return _start(
        "llama-server",
        lambda port: [
            str(built.llama_server),
            "--model",
            str(built.model),
            "--alias",
            MODEL_ALIAS,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--jinja",
            "--ctx-size",
            str(CONTEXT),
            "--parallel",
            "1",
            "--threads",
            str(threads),
            "--no-webui",
        ],
        ready="/health",
        logs=logs,
    )


def start_llama_cpp_python(built: Built, logs: Path, *, threads: int = 1) -> RunningServer:
    """llama-cpp-python's server with its OpenAI-style function calling over a grammar.

    ``--logits_all False``: the default keeps logits for every prompt position (over a GB
    with this vocabulary).
    """
    return _start(
        "llama-cpp-python",
        lambda port: [
            str(built.python),
            "-m",
            "llama_cpp.server",
            "--model",
            str(built.model),
            "--model_alias",
            MODEL_ALIAS,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--chat_format",
            "chatml-function-calling",
            "--logits_all",
            "False",
            "--n_ctx",
            str(CONTEXT),
            "--n_threads",
            str(threads),
        ],
        ready="/v1/models",
        logs=logs,
    )


def _start(name: str, command: Callable[[int], list[str]], *, ready: str, logs: Path) -> RunningServer:
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{name}.log"
    # A port found free can be taken before the server binds it: then try another.
    for _ in range(3):
        port = free_port()
        sink = log.open("ab")
        process = subprocess.Popen(
            command(port),
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            # llama-cpp-python prints what it notices (a client that left) with print().
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            preexec_fn=_die_with_parent,
        )
        server = RunningServer(name, f"http://127.0.0.1:{port}", process, log, sink)
        try:
            if _wait_ready(server, ready):
                return server
        except BaseException:
            server.stop()
            raise
        server.stop()
        if "address already in use" not in server.log_text().lower():
            break
    raise RuntimeError(f"{name} did not start; the end of {log}:\n{_tail(log)}")


def _die_with_parent() -> None:
    """In the child, before exec: on Linux, be sent SIGTERM when the process that started it dies.

    So a test run that is killed outright (SIGKILL, a CI timeout) leaves no server behind.
    """
    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _wait_ready(server: RunningServer, path: str) -> bool:
    """Poll ``path`` until it answers 200; False when the process exits first."""
    deadline = time.monotonic() + READY_WITHIN
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(server.origin + path, timeout=5) as reply:
                if reply.status == 200:
                    return True
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass  # not listening yet, or 503 while the model loads
        try:
            # The poll interval doubles as the watch on the process.
            server.process.wait(0.1)
            return False
        except subprocess.TimeoutExpired:
            pass
    raise RuntimeError(f"{server.name} was not ready after {READY_WITHIN:.0f} s; see {server.log}")


def _tail(log: Path, lines: int = 30) -> str:
    return "".join(log.read_text(errors="replace").splitlines(keepends=True)[-lines:])
