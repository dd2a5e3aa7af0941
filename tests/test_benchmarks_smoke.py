"""The benchmark in smoke mode: every section runs for a few seconds and every rebuilt result is exact.

No timing is asserted here (the machine may be busy); the benchmark itself checks that
each case rebuilt the exact text and tool arguments the server sent and fails otherwise.
Cases that need the official SDKs (the ``bench`` extra) are skipped when those are absent.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_benchmark_smoke_run_is_exact(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["smoke"] is True
    cases = results["streams"]["cases"]
    for name in ("floor-chat", "floor-responses", "floor-anthropic", "rxllm-chat", "rxllm-responses",
                 "rxllm-anthropic", "agent-floor-chat", "agent-rxllm-chat"):  # fmt: skip
        assert name in cases, name
    for name in results["skipped_cases"]:
        assert name not in cases
    assert set(results["scale"]["modes"]) == {"burst", "paced10"}
    pause = results["pause"]
    # Paused streams stop reading: what the server could hand each connection is bounded by the two
    # kernels' socket buffers and rxllm's read buffer (twice, aiohttp's high-water mark), and it stops
    # growing while paused (at most one read's worth, at the window's start).
    kernel_max = int(pause["kernel"]["tcp_rmem"].split()[-1]) + int(pause["kernel"]["tcp_wmem"].split()[-1])
    assert pause["bytes_per_stream_when_paused"]["max"] <= kernel_max + 2 * pause["read_bufsize"]
    assert pause["bytes_grown_while_paused"]["max"] <= pause["read_bufsize"]
    assert set(results["scaling"]) == {
        "collect_response",
        "agent",
        "tool_arguments",
        "hook_aggregated",
        "parse_output",
    }
    assert "rxllm-chat-traced" in cases
    assert set(results["tracing"]["cpu_us_per_turn"]) == {
        f"{mode} {size}" for mode in ("off", "noop", "sdk") for size in (32, 64)
    }
    table = (tmp_path / "table.md").read_text()
    assert table.startswith("Run of ")
    assert "**Smoke run**: toy sizes" in table, "a smoke table says its timings are not the targets'"
