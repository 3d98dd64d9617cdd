"""Run the selected benchmark sections in one process and gather their results."""

from __future__ import annotations

import dataclasses
import datetime
import logging
import os
import tempfile
import time
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Any

from ssformer_repro.benchmark.common import BenchmarkSettings
from ssformer_repro.benchmark.data import keep_up, measure_data_paths
from ssformer_repro.benchmark.estimate import (
    BASE_GRID,
    estimate_grid,
    grid_description,
    grid_forward_gflops,
)
from ssformer_repro.benchmark.evaluation import measure_evaluation
from ssformer_repro.benchmark.kedro_overhead import measure_kedro_overhead
from ssformer_repro.benchmark.report import describe_machine
from ssformer_repro.benchmark.train import measure_training, speedups
from ssformer_repro.benchmark.workspace import Workspace, create_workspace

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class _Run:
    """One benchmark run: its settings, scratch folder and the results of earlier sections."""

    settings: BenchmarkSettings
    scratch: Path
    results: dict[str, Any]

    @cached_property
    def workspace(self) -> Workspace:
        """The synthetic dataset, written on first use and shared by the sections."""
        settings = self.settings
        workspace = create_workspace(
            self.scratch / "workspace", settings.data_images, settings.frame_size, settings.seed
        )
        self.results["workspace"] = {
            "images": len(workspace.manifest),
            "layout": "Kvasir-SEG (JPEG frames and masks), synthetic",
            "frame_size": list(settings.frame_size),
        }
        return workspace

    def models(self) -> list[tuple[str, str]]:
        return [
            (backbone, head) for backbone in self.settings.backbones for head in self.settings.heads
        ]


def _train_section(run: _Run) -> dict[str, Any]:
    rows = [
        row
        for backbone, head in run.models()
        for row in measure_training(backbone, head, run.settings, run.workspace)
    ]
    grid = dataclasses.replace(BASE_GRID, backbones=run.settings.grid_backbones)
    gflops = grid_forward_gflops(grid, run.settings.device) if grid.backbones else {}
    run.results["estimate"] = {
        "grid": grid_description(grid),
        "estimates": estimate_grid(rows, gflops, grid),
    }
    return {"rows": rows, "speedups": speedups(rows)}


def _data_section(run: _Run) -> dict[str, Any]:
    rows = measure_data_paths(run.workspace, run.settings)
    train = run.results.get("train") or {"rows": []}
    return {"rows": rows, "keep_up": keep_up(rows, train["rows"])}


def _eval_section(run: _Run) -> dict[str, Any]:
    rows = [
        row
        for backbone, head in run.models()
        for row in measure_evaluation(backbone, head, run.workspace, run.settings)
    ]
    return {"rows": rows}


def _kedro_section(run: _Run) -> dict[str, Any]:
    settings = run.settings
    return measure_kedro_overhead(
        settings.project,
        run.scratch,
        settings.kedro_run,
        settings.kedro_epochs,
        threads=settings.threads,
        baseline_params=settings.kedro_baseline_params,
    )


# In running order: the data section compares with the training step measured before it.
SECTIONS: dict[str, Callable[[_Run], dict[str, Any]]] = {
    "train": _train_section,
    "data": _data_section,
    "eval": _eval_section,
    "kedro": _kedro_section,
}


def run_benchmark(settings: BenchmarkSettings, command: str) -> dict[str, Any]:
    """Measure the sections of `settings.sections`; the results as a JSON-friendly dict.

    Every section key is present; a section that was not asked for is None.
    """
    unknown = sorted(set(settings.sections) - set(SECTIONS))
    if unknown:
        raise ValueError(f"Unknown benchmark section(s) {unknown}; valid: {', '.join(SECTIONS)}.")
    started = time.perf_counter()
    results: dict[str, Any] = {
        "command": command,
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": describe_machine(settings.device),
        "settings": settings.to_dict(),
        "workspace": None,
        **dict.fromkeys(SECTIONS),
        "estimate": None,
    }
    with tempfile.TemporaryDirectory(prefix="ssformer-benchmark-") as scratch:
        run = _Run(settings=settings, scratch=Path(scratch), results=results)
        for name, measure in SECTIONS.items():
            if name in settings.sections:
                logger.info("Benchmark section %r.", name)
                results[name] = measure(run)
    results["duration_seconds"] = time.perf_counter() - started
    results["machine"]["load_average_at_end"] = list(os.getloadavg())
    return results
