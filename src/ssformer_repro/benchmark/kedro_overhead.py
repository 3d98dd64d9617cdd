"""Kedro's share of a demo run's wall time, measured in a throw-away copy of the project.

`--kedro-run <dataset>.<backbone>.<head>` times one grid run: `kedro run --pipelines=training
--namespaces=<run>`, after processing its dataset (reported, not compared). `--kedro-run
reproduce` times the README's whole demo job, `kedro run --pipelines=reproduce`, from raw data to
tables. Each command is timed from outside its process. Inside it, `RunTimesHook` (hooks.py)
times every node and every dataset load and save and stores them with the MLflow parent run
(`run_times.json`), which this module reads back. The wall time then splits into:
- the training loops (sum of `epoch_seconds` over the runs' `history.csv`);
- the rest of the nodes' time: building models, checkpoints, MLflow child runs, evaluation,
  data processing and reporting;
- loading and saving catalog datasets;
- Kedro's own share, everything else: start-up (imports, configuration, pipeline registration),
  the configuration check, the run lock and the MLflow parent run.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

from ssformer_repro.pipelines.training.nodes import run_directory
from ssformer_repro.project_copy import copy_project
from ssformer_repro.training.loop import HISTORY_FILE

logger = logging.getLogger(__name__)

WHOLE_DEMO = "reproduce"
QUIET_ENVIRONMENT = {
    "KEDRO_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "true",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DVC_NO_ANALYTICS": "1",
}


def run_command(
    run_name: str, epochs: int, models_dir: Path, env: str, extra_params: str | None = None
) -> list[str]:
    """The `kedro run` arguments of the measured command: one grid run, or the whole demo."""
    params = f"--params=training.epochs={epochs},paths.models={models_dir}"
    if extra_params:
        params += f",{extra_params}"
    if run_name == WHOLE_DEMO:
        return ["run", f"--pipelines={WHOLE_DEMO}", f"--env={env}", params]
    return ["run", "--pipelines=training", f"--namespaces={run_name}", f"--env={env}", params]


def measure_kedro_overhead(
    project: Path,
    workdir: Path,
    run_name: str,
    epochs: int,
    env: str = "demo",
    threads: int | None = None,
    baseline_params: str | None = None,
) -> dict[str, Any]:
    """Time the command for `run_name` and split its wall time as the module docstring says.

    `threads` (OMP_NUM_THREADS of the kedro processes) caps torch's CPU threads there. With
    `baseline_params` (e.g. "training.checkpoint_every_seconds=0"), the same command with those
    parameters is timed first, in the same copy, as a baseline (`results["baseline"]`).
    """
    runs = _runs_of(run_name)
    copy = copy_project(project, workdir / "project")
    tracking_uri = f"sqlite:///{copy / 'mlflow.db'}"
    environment = {**os.environ, **QUIET_ENVIRONMENT, "MLFLOW_TRACKING_URI": tracking_uri}
    if threads is not None:
        environment["OMP_NUM_THREADS"] = str(threads)
    data_seconds = None
    if run_name != WHOLE_DEMO:
        dataset = runs[0]["dataset"]
        logger.info("Kedro: processing the %s data of the %s environment.", dataset, env)
        data_seconds = _timed_kedro(
            copy,
            environment,
            "run",
            "--pipelines=data_processing",
            f"--namespaces={dataset}",
            f"--env={env}",
        )

    def measure(models_dir: Path, extra_params: str | None) -> dict[str, Any]:
        arguments = run_command(run_name, epochs, models_dir, env, extra_params)
        logger.info("Kedro: kedro %s", " ".join(arguments))
        wall_seconds = _timed_kedro(copy, environment, *arguments)
        histories = [_history(models_dir, run, epochs) for run in runs or trained_runs(models_dir)]
        return {
            "command": "kedro " + " ".join(arguments).replace(str(models_dir), "<tmp>/models"),
            "epochs": epochs,
            "runs": len(histories),
            **overhead_summary(wall_seconds, latest_run_times(tracking_uri), histories),
        }

    baseline = measure(copy / "baseline_models", baseline_params) if baseline_params else None
    return {
        **measure(copy / "benchmark_models", None),
        "data_processing_seconds": data_seconds,
        "baseline": baseline and {"params": baseline_params, **baseline},
    }


def _history(models_dir: Path, run: dict[str, str], epochs: int) -> pd.DataFrame:
    """A run's history.csv, which must hold `epochs` epochs."""
    path = run_directory({"models": str(models_dir)}, run) / HISTORY_FILE
    history = pd.read_csv(path)
    if len(history) != epochs:
        raise RuntimeError(f"{path} holds {len(history)} epochs, not {epochs}.")
    return history


def overhead_summary(
    wall_seconds: float, run_times: dict[str, Any], histories: list[pd.DataFrame]
) -> dict[str, Any]:
    """Split a command's wall time into training loops, the rest of the nodes, I/O and Kedro."""
    loop_seconds = float(sum(history["epoch_seconds"].sum() for history in histories))
    nodes_seconds = run_times["nodes_seconds"]
    kedro_seconds = wall_seconds - nodes_seconds - run_times["dataset_seconds"]
    return {
        "wall_seconds": wall_seconds,
        "training_loop_seconds": loop_seconds,
        "other_node_seconds": nodes_seconds - loop_seconds,
        "dataset_seconds": run_times["dataset_seconds"],
        "kedro_seconds": kedro_seconds,
        "kedro_percent": 100 * kedro_seconds / wall_seconds,
        # Kedro's share before the first node and after the last, and between nodes.
        "startup_and_exit_seconds": wall_seconds - run_times["pipeline_seconds"],
        "between_nodes_seconds": run_times["other_seconds"],
        "outside_loop_seconds": wall_seconds - loop_seconds,
        "outside_loop_percent": 100 * (wall_seconds - loop_seconds) / wall_seconds,
        "node_seconds": run_times["node_seconds"],
    }


def latest_run_times(tracking_uri: str) -> dict[str, Any]:
    """`run_times.json` of the newest MLflow parent run (the last `kedro run`) in the store."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    experiments = [experiment.experiment_id for experiment in client.search_experiments()]
    runs = client.search_runs(experiments, order_by=["attributes.start_time DESC"])
    parents = [run for run in runs if "mlflow.parentRunId" not in run.data.tags]
    if not parents:
        raise RuntimeError(f"no kedro run was recorded in {tracking_uri}.")
    with tempfile.TemporaryDirectory() as folder:
        path = client.download_artifacts(parents[0].info.run_id, "run_times.json", folder)
        return json.loads(Path(path).read_text())


def _runs_of(run_name: str) -> list[dict[str, str]]:
    if run_name == WHOLE_DEMO:
        return []
    parts = run_name.split(".")
    if len(parts) != 3:
        raise ValueError(
            f"--kedro-run {run_name!r} must name one run as <dataset>.<backbone>.<head>, "
            f"e.g. synth_kvasir.mit_b0.sed, or be {WHOLE_DEMO!r} for the whole demo."
        )
    return [dict(zip(("dataset", "backbone", "head"), parts, strict=True))]


def trained_runs(models_dir: Path) -> list[dict[str, str]]:
    """The runs whose history the whole demo left under `models_dir`."""
    runs = []
    for history in sorted(models_dir.glob(f"*/*/{HISTORY_FILE}")):
        backbone, head = history.parent.name.split("-", 1)
        runs.append({"dataset": history.parent.parent.name, "backbone": backbone, "head": head})
    return runs


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
