"""Kedro's overhead around one training run of the demo, in a throw-away copy of the project.

Three `kedro run` commands, each in its own process, timed from outside:
1. `--pipelines=data_processing --namespaces=<dataset>`: the demo data the run needs (reported,
   not part of the comparison);
2. `--pipelines=training --namespaces=<run>` with `training.epochs` raised: the measured run;
3. the same command with `--only-missing-outputs`, which finds every output present and runs no
   node: Kedro's fixed start-up (imports, configuration, pipeline registration, MLflow hook).
The time inside the training loop is the sum of `epoch_seconds` in the run's `history.csv`;
everything else in (2) is overhead: start-up, loading the cache, building the model,
checkpoints, MLflow logging and the run's evaluation node.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

from ssformer_repro.pipelines.training.nodes import run_directory
from ssformer_repro.project_copy import copy_project
from ssformer_repro.training.loop import HISTORY_FILE

logger = logging.getLogger(__name__)

QUIET_ENVIRONMENT = {
    "KEDRO_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "true",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DVC_NO_ANALYTICS": "1",
}


def run_command(run_name: str, epochs: int, models_dir: Path, env: str) -> list[str]:
    """The `kedro run` arguments of the measured training run."""
    return [
        "run",
        "--pipelines=training",
        f"--namespaces={run_name}",
        f"--env={env}",
        f"--params=training.epochs={epochs},paths.models={models_dir}",
    ]


def measure_kedro_overhead(
    project: Path,
    workdir: Path,
    run_name: str,
    epochs: int,
    env: str = "demo",
    threads: int | None = None,
) -> dict[str, Any]:
    """Wall times of the three commands above and the overhead of the training run.

    `threads` (OMP_NUM_THREADS of the kedro processes) caps torch's CPU threads there.
    """
    dataset, backbone, head = _split_run_name(run_name)
    copy = copy_project(project, workdir / "project")
    models_dir = copy / "benchmark_models"
    logger.info("Kedro: processing the %s data of the %s environment.", dataset, env)
    environment = {
        **os.environ,
        **QUIET_ENVIRONMENT,
        "MLFLOW_TRACKING_URI": f"sqlite:///{copy / 'mlflow.db'}",
    }
    if threads is not None:
        environment["OMP_NUM_THREADS"] = str(threads)
    data_seconds = _timed_kedro(
        copy,
        environment,
        "run",
        "--pipelines=data_processing",
        f"--namespaces={dataset}",
        f"--env={env}",
    )
    arguments = run_command(run_name, epochs, models_dir, env)
    logger.info("Kedro: kedro %s", " ".join(arguments))
    wall_seconds = _timed_kedro(copy, environment, *arguments)
    startup_seconds = _timed_kedro(copy, environment, *arguments, "--only-missing-outputs")
    run = {"dataset": dataset, "backbone": backbone, "head": head}
    history = pd.read_csv(run_directory({"models": str(models_dir)}, run) / HISTORY_FILE)
    if len(history) != epochs:
        raise RuntimeError(
            f"kedro run of {run_name} left {len(history)} epochs in its history, not {epochs}."
        )
    return {
        "command": "kedro " + " ".join(arguments).replace(str(models_dir), "<tmp>/models"),
        "data_processing_seconds": data_seconds,
        **overhead_summary(wall_seconds, startup_seconds, history),
    }


def overhead_summary(
    wall_seconds: float, startup_seconds: float, history: pd.DataFrame
) -> dict[str, Any]:
    """Split a run's wall time into the training loop, Kedro's start-up and the rest."""
    loop_seconds = float(history["epoch_seconds"].sum())
    overhead_seconds = wall_seconds - loop_seconds
    return {
        "epochs": len(history),
        "wall_seconds": wall_seconds,
        "training_loop_seconds": loop_seconds,
        "overhead_seconds": overhead_seconds,
        "overhead_percent": 100 * overhead_seconds / wall_seconds,
        "startup_seconds": startup_seconds,
        "other_overhead_seconds": overhead_seconds - startup_seconds,
    }


def _split_run_name(run_name: str) -> tuple[str, str, str]:
    parts = run_name.split(".")
    if len(parts) != 3:
        raise ValueError(
            f"--kedro-run {run_name!r} must name one run as <dataset>.<backbone>.<head>, "
            "e.g. synth_kvasir.mit_b0.sed."
        )
    return parts[0], parts[1], parts[2]


def _timed_kedro(project: Path, environment: dict[str, str], *arguments: str) -> float:
    """Run `python -m kedro <arguments>` in `project`; its wall time in seconds."""
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "kedro", *arguments],
        cwd=project,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(
            f"kedro {' '.join(arguments)} failed with exit code {result.returncode} in {project}:\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return seconds
