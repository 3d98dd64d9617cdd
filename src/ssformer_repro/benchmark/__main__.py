"""Command line: `python -m ssformer_repro.benchmark --help`. Every field of `BenchmarkSettings`
is the option of its name (`batch_size`: `--batch-size`), the field's metadata its keywords."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from ssformer_repro.benchmark.runner import SECTIONS, run_benchmark, write_results
from ssformer_repro.benchmark.settings import DEVICE_DEFAULTS, BenchmarkSettings

FIELDS = dataclasses.fields(BenchmarkSettings)


def build_parser() -> argparse.ArgumentParser:
    """One option per settings field, and --output."""
    sections = ", ".join(
        name + ("" if s.default else " (on request)") for name, s in SECTIONS.items()
    )
    parser = argparse.ArgumentParser(
        prog="python -m ssformer_repro.benchmark",
        description="Time the study's code paths next to a loop written like the official code.",
        epilog=f"Sections: {sections}. Defaults by device: {DEVICE_DEFAULTS}.",
    )
    for field in FIELDS:
        by_device = " (default: by device)" if field.name in DEVICE_DEFAULTS["cpu"] else ""
        keywords = dict(field.metadata) | {"help": field.metadata["help"] + by_device}
        parser.add_argument(f"--{field.name.replace('_', '-')}", default=field.default, **keywords)
    output = Path("data/08_reporting/benchmark")
    parser.add_argument("--output", type=Path, default=output, help="folder for the report")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, write benchmark.json and benchmark.md to --output, print the latter."""
    parser, argv = build_parser(), list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    try:
        settings = BenchmarkSettings(**{field.name: getattr(args, field.name) for field in FIELDS})
    except ValueError as error:
        parser.error(str(error))
    if settings.threads is not None:
        torch.set_num_threads(settings.threads)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    command = shlex.join(["python", "-m", "ssformer_repro.benchmark", *argv])
    json_path, markdown_path = write_results(run_benchmark(settings, command), args.output)
    sys.stdout.write(f"{markdown_path.read_text()}\nWrote {json_path} and {markdown_path}.\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
