"""Side-by-side performance runs of rxllm, a hand-written floor and the SDKs: ``python -m benchmarks``."""
