"""Kedro's share of a demo run's wall time, measured in a throw-away copy of the project.

`--kedro-run <dataset>.<backbone>.<head>` times one grid run: `kedro run --pipelines=training
--namespaces=<run>`. `--kedro-run reproduce` times the README's whole demo job, `kedro run
--pipelines=reproduce`, from raw data to tables. Each command is timed from outside its process,
after the data processing it needs (reported, not compared). Two ways to see Kedro's share:
- against a baseline: the same nodes, catalog and parameters run by a plain loop
  (`plain_run.py`, no session, CLI, runner or hooks), timed in the same copy just before; the
  difference is what `kedro run` adds;
- from inside: `RunTimesHook` (hooks.py) times every node and every dataset load and save and
  stores them with the MLflow parent run (`run_times.json`), which this module reads back. The
  wall time then splits into the training loops (sum of `epoch_seconds` over the runs'
  `history.csv`); the rest of the nodes (building models, checkpoints, MLflow child runs,
  evaluation, data processing, reporting); loading and saving catalog datasets; and the
  remainder: start-up (imports, configuration, pipeline registration, the configuration check,
  the run lock, the MLflow parent run) and the runner between nodes. The remainder includes
  importing libraries the nodes use, when that happens before the first node.
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
KEDRO = "kedro"
PLAIN_RUNNER = "ssformer_repro.benchmark.plain_run"
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

    In one copy of the project, in this order: the data processing the command needs (which
    also warms the file cache), the same nodes run by `plain_run` without Kedro
    (`results["plain"]`), with `baseline_params` (e.g. "training.checkpoint_every_seconds=0")
    the command with those parameters (`results["baseline"]`), then the measured command.
    `threads` (OMP_NUM_THREADS of the processes) caps torch's CPU threads there.
    """
    runs = _runs_of(run_name)
    copy = copy_project(project, workdir / "project")
    tracking_uri = f"sqlite:///{copy / 'mlflow.db'}"
    environment = {**os.environ, **QUIET_ENVIRONMENT, "MLFLOW_TRACKING_URI": tracking_uri}
    if threads is not None:
        environment["OMP_NUM_THREADS"] = str(threads)
    datasets = [f"--namespaces={runs[0]['dataset']}"] if runs else []
    logger.info("Kedro: processing the data of the %s environment.", env)
    data_seconds = _timed(
        copy, environment, KEDRO, "run", "--pipelines=data_processing", *datasets, f"--env={env}"
    )

    def measure(runner: str, models_dir: Path, extra_params: str | None) -> dict[str, Any]:
        arguments = run_command(run_name, epochs, models_dir, env, extra_params)
        logger.info("Kedro: python -m %s %s", runner, " ".join(arguments))
        wall_seconds = _timed(copy, environment, runner, *arguments)
        histories = [_history(models_dir, run, epochs) for run in runs or trained_runs(models_dir)]
        loop_seconds = float(sum(history["epoch_seconds"].sum() for history in histories))
        timed = {
            "command": f"python -m {runner} "
            + " ".join(arguments).replace(str(models_dir), "<tmp>/models"),
            "epochs": epochs,
            "runs": len(histories),
            "wall_seconds": wall_seconds,
            "training_loop_seconds": loop_seconds,
        }
        if runner == KEDRO:
            run_times = latest_run_times(tracking_uri)
            timed.update(overhead_summary(wall_seconds, run_times, loop_seconds))
        return timed

    plain = measure(PLAIN_RUNNER, copy / "plain_models", None)
    baseline = (
        measure(KEDRO, copy / "baseline_models", baseline_params) if baseline_params else None
    )
    measured = measure(KEDRO, copy / "benchmark_models", None)
    return {
        **measured,
        "data_processing_seconds": data_seconds,
        "plain": {**plain, **kedro_against_plain(measured, plain)},
        "baseline": baseline and {"params": baseline_params, **baseline},
    }


def kedro_against_plain(kedro: dict[str, Any], plain: dict[str, Any]) -> dict[str, float]:
    """What `kedro run` adds to the plain loop: in wall time, and outside the training loops.

    The training loops do the same work in both, but their time varies by seconds from run to
    run on a shared machine; comparing the time outside them removes that noise.
    """
    adds = kedro["wall_seconds"] - plain["wall_seconds"]
    outside = (kedro["wall_seconds"] - kedro["training_loop_seconds"]) - (
        plain["wall_seconds"] - plain["training_loop_seconds"]
    )
    return {
        "kedro_adds_seconds": adds,
        "kedro_adds_percent": 100 * adds / kedro["wall_seconds"],
        "kedro_adds_outside_loops_seconds": outside,
        "kedro_adds_outside_loops_percent": 100 * outside / kedro["wall_seconds"],
    }


def _history(models_dir: Path, run: dict[str, str], epochs: int) -> pd.DataFrame:
    """A run's history.csv, which must hold `epochs` epochs."""
    path = run_directory({"models": str(models_dir)}, run) / HISTORY_FILE
    history = pd.read_csv(path)
    if len(history) != epochs:
        raise RuntimeError(f"{path} holds {len(history)} epochs, not {epochs}.")
    return history


def overhead_summary(
    wall_seconds: float, run_times: dict[str, Any], loop_seconds: float
) -> dict[str, Any]:
    """Split a kedro command's wall time: training loops, the rest of the nodes, dataset I/O and
    the time outside nodes and I/O (start-up and exit, the runner between nodes)."""
    nodes_seconds = run_times["nodes_seconds"]
    outside_nodes_seconds = wall_seconds - nodes_seconds - run_times["dataset_seconds"]
    return {
        "other_node_seconds": nodes_seconds - loop_seconds,
        "dataset_seconds": run_times["dataset_seconds"],
        "outside_nodes_seconds": outside_nodes_seconds,
        "outside_nodes_percent": 100 * outside_nodes_seconds / wall_seconds,
        "startup_and_exit_seconds": wall_seconds - run_times["pipeline_seconds"],
        "between_nodes_seconds": run_times["other_seconds"],
        "outside_loop_seconds": wall_seconds - loop_seconds,
        "outside_loop_percent": 100 * (wall_seconds - loop_seconds) / wall_seconds,
        "node_seconds": run_times["node_seconds"],
    }


def latest_run_times(tracking_uri: str) -> dict[str, Any]:
    """`run_times.json` of the newest `kedro run`'s MLflow run (tagged with its session) in the store."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    experiments = [experiment.experiment_id for experiment in client.search_experiments()]
    runs = client.search_runs(experiments, order_by=["attributes.start_time DESC"])
    parents = [run for run in runs if "kedro.session_id" in run.data.tags]
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


def _timed(project: Path, environment: dict[str, str], module: str, *arguments: str) -> float:
    """Run `python -m <module> <arguments>` in `project`; its wall time in seconds."""
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", module, *arguments],
        cwd=project,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(
            f"python -m {module} {' '.join(arguments)} failed with exit code {result.returncode} in {project}:\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return seconds
