"""The sections by name, and the run that measures the selected ones and reports them. A section
is a `measure(run) -> dict` and a `markdown(result, results) -> str` function: adding one is an
entry in `SECTIONS`. Sections share the `Run` (common.py), the results of those before them."""

from __future__ import annotations

import datetime
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ssformer_repro.benchmark import attention, data, evaluation, predict, train
from ssformer_repro.benchmark.common import Run, describe_machine
from ssformer_repro.benchmark.settings import BenchmarkSettings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Section:
    """A part of the benchmark: its heading, measurement and Markdown."""

    title: str
    measure: Callable[[Run], dict[str, Any]]
    markdown: Callable[[dict[str, Any], dict[str, Any]], str]
    default: bool = True  # run when --sections is not given


# In running order (settings.SECTION_NAMES): the data section compares with the training step
# measured before it.
SECTIONS: dict[str, Section] = {
    "train": Section("Training throughput", train.measure, train.markdown),
    "data": Section("Data path", data.measure, data.markdown),
    "eval": Section("Evaluation throughput", evaluation.measure, evaluation.markdown),
    "attention": Section("Attention and compile", attention.measure, attention.markdown, False),
    "predict": Section("Prediction throughput", predict.measure, predict.markdown, False),
}


def run_benchmark(settings: BenchmarkSettings, command: str) -> dict[str, Any]:
    """Measure the selected sections; the results, with every section's key (None if skipped)."""
    selected = settings.sections or [name for name, section in SECTIONS.items() if section.default]
    started = time.perf_counter()
    results: dict[str, Any] = {
        "command": command,
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": describe_machine(settings.device),
        "settings": settings.to_dict(),
        "workspace": None,
        **dict.fromkeys(SECTIONS),
    }
    with tempfile.TemporaryDirectory(prefix="ssformer-benchmark-") as scratch:
        run = Run(settings=settings, scratch=Path(scratch), results=results)
        for name in [name for name in SECTIONS if name in selected]:
            logger.info("Benchmark section %r.", name)
            section_started = time.perf_counter()
            results[name] = SECTIONS[name].measure(run)
            results[name]["seconds"] = time.perf_counter() - section_started
    results["duration_seconds"] = time.perf_counter() - started
    results["machine"]["load_average_at_end"] = list(os.getloadavg())
    return results


def render_markdown(results: dict[str, Any]) -> str:
    """The results as Markdown: command and machine, then one part per section that ran."""
    lines = ["# ssformer_repro benchmark", "", f"- command: `{results['command']}`"]
    lines += [f"- started: {results['started']} (UTC), took {results['duration_seconds']:.0f} s"]
    lines += [f"- {key.replace('_', ' ')}: {value}" for key, value in results["machine"].items()]
    for name, section in SECTIONS.items():
        if results[name] is not None:
            text, took = section.markdown(results[name], results), results[name]["seconds"]
            lines += ["", f"## {section.title}", "", text, "", f"_{took:.0f} s_"]
    return "\n".join(lines) + "\n"


def write_results(results: dict[str, Any], output: Path) -> tuple[Path, Path]:
    """Write `benchmark.json` and `benchmark.md` into `output` (created if needed)."""
    output.mkdir(parents=True, exist_ok=True)
    json_path, markdown_path = output / "benchmark.json", output / "benchmark.md"
    json_path.write_text(json.dumps(results, indent=2) + "\n")
    markdown_path.write_text(render_markdown(results))
    return json_path, markdown_path
