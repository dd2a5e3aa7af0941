"""``python -m real`` (``scripts/real-servers``): build if needed, start both servers, print their URLs.

They run until Ctrl-C (or SIGTERM), then stop. Logs go to a temporary directory,
named in the output.
"""

from __future__ import annotations

import signal
import sys
import tempfile
import threading
from pathlib import Path

from real.build import build
from real.servers import MODEL_ALIAS, RunningServer, start_llama_cpp_python, start_llama_server


def main() -> int:
    built = build()
    logs = Path(tempfile.mkdtemp(prefix="rxllm-real-"))
    stop = threading.Event()
    # Set both: a shell starting this in the background would leave SIGINT ignored.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    started: list[RunningServer] = []
    try:
        llama_server = start_llama_server(built, logs)
        started.append(llama_server)
        llama_cpp_python = start_llama_cpp_python(built, logs)
        started.append(llama_cpp_python)
        print(f"model {MODEL_ALIAS!r}: {built.model}")
        print(
            f"llama-server      Chat/Responses base_url={llama_server.v1}"
            f"  Messages base_url={llama_server.origin}"
        )
        print(f"llama-cpp-python  Chat base_url={llama_cpp_python.v1}")
        print(f"logs in {logs}; Ctrl-C stops both", flush=True)
        stop.wait()
    finally:
        for server in reversed(started):
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
