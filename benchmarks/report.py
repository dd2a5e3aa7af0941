"""The benchmark's report: the targets (house v2's where it set them) against a run, tables, a chart."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _ratio(results: dict[str, Any], case: str, versus: str) -> float | None:
    for entry in results.get("streams", {}).get("ratios", []):
        if entry["case"] == case and entry["versus"] == versus:
            value: float = entry["median"]
            return value
    return None


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target: what it asks, the measured value, and whether it holds (``None``: not measured)."""
    out: list[dict[str, Any]] = []

    def add(name: str, value: float | None, limit: float, unit: str = "x", below: bool = False) -> None:
        holds = None if value is None else (value < limit if below else value <= limit)
        out.append({"target": name, "measured": value, "limit": limit, "unit": unit, "holds": holds})

    add("Chat CPU/chunk vs floor", _ratio(results, "rxllm-chat", "floor-chat"), 1.5)
    add("Chat CPU/chunk vs openai create(stream=True)", _ratio(results, "rxllm-chat", "openai-create"), 0.1)
    add("Responses CPU/chunk vs floor", _ratio(results, "rxllm-responses", "floor-responses"), 1.7)
    add(
        "Responses CPU/chunk vs openai responses.create",
        _ratio(results, "rxllm-responses", "openai-responses"),
        0.12,
    )
    add("Anthropic CPU/chunk vs floor", _ratio(results, "rxllm-anthropic", "floor-anthropic"), 1.7)
    add(
        "Anthropic CPU/chunk vs anthropic messages.stream",
        _ratio(results, "rxllm-anthropic", "anthropic-stream"),
        0.12,
    )
    add(
        "agent over Chat CPU/chunk vs agent floor",
        _ratio(results, "agent-rxllm-chat", "agent-floor-chat"),
        2.0,
    )
    scale = results.get("scale", {}).get("modes", {})
    paced_mode = next((mode for mode in scale if mode.startswith("paced")), "paced100")
    paced = scale.get(paced_mode, {}).get("ratios", {})
    burst = scale.get("burst", {}).get("ratios", {})

    def med(table: dict[str, Any], key: str) -> float | None:
        entry = table.get(key)
        return None if entry is None else float(entry["median"])

    add("paced streams CPU/chunk vs floor", med(paced, "rxllm/floor cpu_us_per_chunk"), 1.3)
    add("1,000 bursty streams wall vs floor", med(burst, "rxllm/floor wall_s"), 1.2)
    add("1,000 paced streams wall vs floor", med(paced, "rxllm/floor wall_s"), 2.0)
    add("1,000 paced streams memory/stream vs floor", med(paced, "rxllm/floor memory_per_stream_kib"), 1.5)
    add("1,000 bursty streams memory/stream vs floor", med(burst, "rxllm/floor memory_per_stream_kib"), 1.5)
    huge = results.get("huge", {})
    huge_modes = huge.get("modes", {})
    huge_paced = next(iter(huge_modes.values()), {}).get("ratios", {})
    count = f"{huge['streams']:,}" if huge else "10,000"
    add(f"{count} paced streams, one process, wall vs floor", med(huge_paced, "rxllm/floor wall_s"), 1.1)
    add(
        f"{count} paced streams memory/stream vs floor",
        med(huge_paced, "rxllm/floor memory_per_stream_kib"),
        1.2,
    )
    latency = results.get("latency")
    add("first byte to first event, added over the floor", None if latency is None else latency["added_us"],
        50.0, " µs")  # fmt: skip
    pause = results.get("pause")
    paused_cpu = None if pause is None else pause["cpu_percent_of_one_core"]
    add("100 paused streams CPU (% of one core)", paused_cpu, 1.0, "%", below=True)
    add("bytes read while paused (growth over the window)",
        None if pause is None else pause["bytes_grown_while_paused"]["total"], 0, "B")  # fmt: skip
    add(
        "import rxllm",
        None if "import_s" not in results else results["import_s"]["median"],
        0.1,
        "s",
        below=True,
    )
    scaling = results.get("scaling", {})
    for name in ("collect_response", "agent", "tool_arguments", "hook_aggregated", "parse_output"):
        if name in scaling:
            ratio = scaling[name]["ratio"]
            out.append({"target": f"{name}: 4x the size takes about 4x the time", "measured": ratio,
                        "limit": 5.0, "unit": "x", "holds": ratio <= 5.0})  # fmt: skip
    return out


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "n/a"
    if unit == "B":
        return f"{value:,.0f} B"
    if unit == "%":
        return f"{value:.2f} %"
    if unit == "s":
        return f"{value:.3f} s"
    return f"{value:.3g}{unit}"


def table(results: dict[str, Any]) -> str:
    """Markdown tables of one run."""
    machine = results["machine"]
    lines = [
        f"Run of {results['date']} on {machine['cpu']} ({machine['cores']} cores), "
        f"Python {machine['python']}, "
        + ", ".join(f"{name} {version}" for name, version in machine["versions"].items() if version),
        "",
    ]
    if results.get("smoke"):
        lines += [
            "**Smoke run**: toy sizes and one repetition, to check exactness. Its timings and the target "
            "column below say nothing about the targets; run `python -m benchmarks` for those.",
            "",
        ]
    streams = results.get("streams")
    if streams:
        lines += [
            f"**Streams** ({streams['events']:,} server-sent events each, {streams['reps']} repetitions, "
            "interleaved, order rotated; medians with min-max)",
            "",
            "| case | CPU per chunk (µs) | min-max | chunks/s |",
            "|---|---:|---:|---:|",
        ]
        for name, case in streams["cases"].items():
            cpu, rate = case["cpu_us_per_chunk"], case["chunks_per_s"]
            lines.append(
                f"| {name} | {cpu['median']:.2f} | {cpu['min']:.2f}-{cpu['max']:.2f} "
                f"| {rate['median']:,.0f} |"
            )
        lines += [
            "",
            "| ratio of CPU per chunk, per repetition | median | min-max | target |",
            "|---|---:|---:|---:|",
        ]
        for entry in streams["ratios"]:
            target = "" if entry["target"] is None else f"<= {entry['target']:g}"
            lines.append(
                f"| {entry['case']} / {entry['versus']} | {entry['median']:.3f} | "
                f"{entry['min']:.3f}-{entry['max']:.3f} | {target} |"
            )
        lines.append("")
    for key, what in (
        ("scale", "concurrent Chat streams on one loop"),
        ("huge", "concurrent paced Chat streams, one process"),
    ):
        scale = results.get(key)
        if scale:
            lines += _scale_lines(scale, what)
    latency = results.get("latency")
    if latency:
        floor, ours = latency["floor_us"], latency["rxllm_us"]
        lines += [
            f"**Latency** (first byte on the socket to the first event, {latency['streams']} streams "
            f"one after another): floor median {floor['median']:.0f} µs (min {floor['min']:.0f}), "
            f"rxllm median {ours['median']:.0f} µs (min {ours['min']:.0f}); "
            f"added {latency['added_us']:.0f} µs.",
            "",
        ]
    pause = results.get("pause")
    if pause:
        lines += [
            f"**Pause**: {pause['streams']} paused streams over {pause['seconds']:.1f} s used "
            f"{pause['cpu_s'] * 1000:.1f} ms of CPU ({pause['cpu_percent_of_one_core']:.3f} % of one core). "
            f"Bytes the flooding server could hand to each connection before it stalled: median "
            f"{pause['bytes_per_stream_when_paused']['median']:,}, "
            f"max {pause['bytes_per_stream_when_paused']['max']:,} "
            f"(client read buffer {pause['read_bufsize']:,} B plus the kernels' socket buffers, "
            f"tcp_rmem {pause['kernel']['tcp_rmem']}, tcp_wmem {pause['kernel']['tcp_wmem']}); "
            f"growth while paused: {pause['bytes_grown_while_paused']['total']:,} B in total.",
            "",
        ]
    traced = results.get("tracing")
    if traced:
        short, long = traced["sizes"]
        lines += [
            f"**Tracing** (Chat turns of {short} and {long:,} events; tracing off, on with the no-op "
            f"API providers, on into the SDK; {traced['reps']} repetitions, interleaved; "
            "medians with min-max)",
            "",
            "| tracing | events | CPU per turn (µs) | min-max |",
            "|---|---:|---:|---:|",
        ]
        for name, entry in traced["cpu_us_per_turn"].items():
            mode, size = name.split()
            lines.append(
                f"| {mode} | {int(size):,} | {entry['median']:.1f} | {entry['min']:.1f}-{entry['max']:.1f} |"
            )
        lines += ["", "| tracing on, added | per turn (µs) | per chunk (µs) |", "|---|---:|---:|"]
        for mode, entry in traced["added"].items():
            turn, chunk = entry["us_per_turn"], entry["us_per_chunk"]
            lines.append(
                f"| {mode} | {turn['median']:.1f} ({turn['min']:.1f}-{turn['max']:.1f}) "
                f"| {chunk['median']:.2f} ({chunk['min']:.2f}-{chunk['max']:.2f}) |"
            )
        lines += [
            "",
            f"One SDK `Histogram.record` with a chat metric's attributes: "
            f"{traced['sdk_record_us']['median']:.2f} µs (`time_per_output_chunk` records one per chunk).",
            "",
        ]
    scaling = results.get("scaling")
    if scaling:
        lines += ["**Scaling** (best of 3)", "", "| what | sizes | seconds | ratio |", "|---|---|---|---:|"]
        for name, entry in scaling.items():
            sizes = " / ".join(str(size) for size in entry["sizes"])
            seconds = " / ".join(f"{value:.3f}" for value in entry["seconds"])
            lines.append(f"| {name} | {sizes} | {seconds} | {entry['ratio']:.2f} |")
        lines.append("")
    if "import_s" in results:
        lines += [
            f"**Import**: `import rxllm` takes {results['import_s']['median']:.3f} s (median of 5).",
            "",
        ]
    lines += ["**Targets**", "", "| target | measured | limit | holds |", "|---|---:|---:|---|"]
    for entry in results.get("targets", []):
        holds = {True: "yes", False: "**no**", None: "not measured"}[entry["holds"]]
        unit = entry["unit"]
        limit = ("< " if unit in ("%", "s") else "<= ") + _fmt(entry["limit"], unit)
        lines.append(f"| {entry['target']} | {_fmt(entry['measured'], unit)} | {limit} | {holds} |")
    return "\n".join(lines)


def _scale_lines(scale: dict[str, Any], what: str) -> list[str]:
    lines: list[str] = []
    lines += [
        f"**Scale** ({scale['streams']:,} {what}, {scale['reps']} repetitions)",
        "",
        "| mode | case | events/stream | wall (s) | CPU per chunk (µs) | chunks/s "
        "| memory per stream (KiB) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for mode, data in scale["modes"].items():
        for case, row in data["cases"].items():
            lines.append(
                f"| {mode} | {case} | {row['events_per_stream']} | {row['wall_s']['median']:.2f} | "
                f"{row['cpu_us_per_chunk']['median']:.2f} | {row['chunks_per_s']['median']:,.0f} | "
                f"{row['memory_per_stream_kib']['median']:.1f} |"
            )
    lines += ["", "| mode | ratio, per repetition | median | min-max |", "|---|---|---:|---:|"]
    for mode, data in scale["modes"].items():
        for name, entry in data["ratios"].items():
            lines.append(
                f"| {mode} | {name} | {entry['median']:.2f} | {entry['min']:.2f}-{entry['max']:.2f} |"
            )
    lines.append("")
    return lines


def chart(results: dict[str, Any], path: Path) -> None:
    """CPU per chunk of every streams case (log scale, min-max whiskers), and the scale runs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    streams = results["streams"]["cases"]
    names = list(streams)
    medians = [streams[name]["cpu_us_per_chunk"]["median"] for name in names]
    low = [m - streams[name]["cpu_us_per_chunk"]["min"] for name, m in zip(names, medians, strict=True)]
    high = [streams[name]["cpu_us_per_chunk"]["max"] - m for name, m in zip(names, medians, strict=True)]
    colours = {"floor": "#7f7f7f", "rxllm": "#1f77b4", "sdk": "#d62728", "agent-floor": "#bcbcbc",
               "agent-rxllm": "#6baed6"}  # fmt: skip
    scale = results.get("scale", {}).get("modes", {})
    figure, axes = plt.subplots(1, 2 if scale else 1, figsize=(14 if scale else 9, 6), squeeze=False)
    left = axes[0][0]
    left.barh(names, medians, xerr=[low, high], color=[colours[streams[n]["kind"]] for n in names])
    left.set_xscale("log")
    left.invert_yaxis()
    left.set_xlabel("CPU per chunk (µs, log scale; median, min-max whiskers)")
    left.set_title(
        f"{results['streams']['events']:,}-event streams, {results['streams']['reps']} repetitions"
    )
    for y, value in enumerate(medians):
        left.text(value * 1.08, y, f"{value:.2f}", va="center", fontsize=8)
    if scale:
        right = axes[0][1]
        labels, walls = [], []
        for mode, data in scale.items():
            for case, row in data["cases"].items():
                labels.append(f"{mode} {case}")
                walls.append(row["wall_s"]["median"])
        colour = ["#7f7f7f" if "floor" in x else "#1f77b4" if "rxllm" in x else "#d62728" for x in labels]
        right.barh(labels, walls, color=colour)
        right.invert_yaxis()
        right.set_xlabel("wall time (s, median)")
        right.set_title(f"{results['scale']['streams']:,} concurrent streams on one loop")
        for y, value in enumerate(walls):
            right.text(value * 1.01, y, f"{value:.2f}", va="center", fontsize=8)
    figure.suptitle(f"rxllm benchmark, {results['date']}, {results['machine']['cpu']}", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
