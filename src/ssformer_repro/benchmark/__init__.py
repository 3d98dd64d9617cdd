"""Benchmark of the study's code paths, side by side with a loop written like the official code.

`python -m ssformer_repro.benchmark` measures, in one process: training throughput (images/s,
TFLOP/s) of our loop and of the official-style reference loop; the data path from JPEG files
versus the decoded cache per worker count; evaluation throughput; Kedro's overhead around one
demo run; and an estimate of the full grid's wall time. See docs/benchmarks.md.
"""

from ssformer_repro.benchmark.common import BenchmarkSettings
from ssformer_repro.benchmark.runner import run_benchmark

__all__ = ["BenchmarkSettings", "run_benchmark"]
