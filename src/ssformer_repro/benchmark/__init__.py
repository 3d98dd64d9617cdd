"""Benchmark of the study's code paths next to a loop written like the official code:
`python -m ssformer_repro.benchmark` runs the sections of `runner.SECTIONS` (docs/benchmarks.md)."""

from ssformer_repro.benchmark.runner import SECTIONS, run_benchmark
from ssformer_repro.benchmark.settings import BenchmarkSettings

__all__ = ["SECTIONS", "BenchmarkSettings", "run_benchmark"]
