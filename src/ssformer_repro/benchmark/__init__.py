"""Benchmark of the study's code paths next to a loop written like the official code:
`python -m ssformer_repro.benchmark` runs the sections of `runner.SECTIONS` (docs/benchmarks.md).

Import from the modules (`runner`, `settings`): this package imports none of them, as they
import from it (`from ssformer_repro.benchmark import train`)."""
