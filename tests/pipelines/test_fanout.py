"""The grid fans out: its runs, started as separate concurrent processes by the SLURM recipe
(scripts/slurm_grid.sbatch), report exactly what one sequential `kedro run` reports."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from kedro.config import OmegaConfigLoader

from ssformer_repro import settings
from ssformer_repro.grid.cli import run_one
from tests.conftest import PROJECT_ROOT, clean_project, copy_project

pytestmark = pytest.mark.slow  # Kedro/DVC/browser runs end to end

SLURM_SCRIPT = "scripts/slurm_grid.sbatch"
# A two-run demo grid (one dataset of 40 images, two heads, two epochs). `--params` cannot pass
# a list of two heads (Kedro splits its value at commas), so the grid goes into a conf file.
SMALL_GRID = """\
reproduce:
  datasets: [synth_kvasir]
  backbones: [mit_b0]
  heads: [pld, sed]
"""
SMALL_DEMO = (
    "data_processing.datasets=[synth_kvasir],datasets.synth_kvasir.synthetic.n_images=40,"
    "training.epochs=2"
)
RUNS = ["synth_kvasir.mit_b0.pld.seed42", "synth_kvasir.mit_b0.sed.seed42"]
REPORTS = ["runs.csv", "results_table.csv", "toolbox_metrics.csv"]


def small_demo_project(target: Path) -> Path:
    """A project copy (with the SLURM script) whose demo grid is SMALL_GRID."""
    target.mkdir()
    project = copy_project(target)
    (project / "conf/demo/parameters_reproduce.yml").write_text(SMALL_GRID)
    (project / "scripts").mkdir()
    shutil.copy2(PROJECT_ROOT / SLURM_SCRIPT, project / SLURM_SCRIPT)
    return project


def start(project: Path, command: list[str], **env: str) -> tuple[subprocess.Popen, Path]:
    """`command` started in the background in `project`, logging to a file; that file."""
    log = project / f"job-{len(list(project.glob('job-*.log')))}.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            command,
            cwd=project,
            env={
                **os.environ,
                "PYTHON": sys.executable,
                "KEDRO_ENV": "demo",
                "KEDRO_PARAMS": SMALL_DEMO,
                "MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}",
                "OMP_NUM_THREADS": "1",  # one torch thread each: same numerics, no oversubscription
                **env,
            },
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    return process, log


def wait_for(started: tuple[subprocess.Popen, Path]) -> None:
    process, log = started
    if process.wait(timeout=300) != 0:
        raise AssertionError(
            f"{' '.join(process.args)} failed ({process.returncode}):\n{log.read_text()[-4000:]}"
        )


def slurm_job(project: Path, stage: str, **env: str) -> tuple[subprocess.Popen, Path]:
    """What SLURM runs for one job of the recipe: the script with its stage."""
    return start(project, ["bash", SLURM_SCRIPT, stage], **env)


def reporting_file(project: Path, name: str) -> Path:
    """Where the demo's catalog writes the reporting file `name`."""
    loader = OmegaConfigLoader(
        conf_source=str(project / "conf"), env="demo", **settings.CONFIG_LOADER_ARGS
    )
    results_table = loader["catalog"]["reporting.results_table"]["filepath"]
    return project / Path(results_table).parent / name


def test_grid_runs_as_separate_jobs_report_like_one_sequential_run(tmp_path):
    fanned_out = small_demo_project(tmp_path / "fanned_out")
    sequential = small_demo_project(tmp_path / "sequential")
    # The reference runs alongside, on the other core.
    reference = start(
        sequential,
        [sys.executable, "-m", "kedro", "run", "--pipelines=reproduce", "--env=demo"]
        + [f"--params={SMALL_DEMO}"],
    )

    wait_for(slurm_job(fanned_out, "data_processing"))
    # Both array tasks at once, sharing one SQLite MLflow store (SQLite serialises the writes;
    # across machines the recipe needs an MLflow server).
    tasks = [slurm_job(fanned_out, "train", SLURM_ARRAY_TASK_ID=str(task)) for task in (0, 1)]
    for task in tasks:
        wait_for(task)
    wait_for(slurm_job(fanned_out, "reporting"))
    wait_for(reference)

    for name in REPORTS:
        pd.testing.assert_frame_equal(
            pd.read_csv(reporting_file(fanned_out, name)),
            pd.read_csv(reporting_file(sequential, name)),
            check_exact=True,
        )
    fanned_metrics, sequential_metrics = (
        json.loads(reporting_file(project, "metrics.json").read_text())
        for project in (fanned_out, sequential)
    )
    assert fanned_metrics == sequential_metrics
    assert set(fanned_metrics["synth_kvasir"]["mit_b0"]) == {"pld", "sed"}

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{fanned_out / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("ssformer-repro")
    children = [
        run
        for run in client.search_runs([experiment.experiment_id])
        if "mlflow.parentRunId" in run.data.tags
    ]
    assert sorted(run.info.run_name for run in children) == RUNS
    assert all(run.info.status == "FINISHED" for run in children)
    assert all("test_mdice" in run.data.metrics for run in children)


def test_submission_chains_data_processing_the_array_and_reporting(tmp_path):
    project = small_demo_project(tmp_path / "project")
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    # A stand-in for sbatch: records its arguments, answers a job id like `sbatch --parsable`.
    (fake_bin / "sbatch").write_text(
        '#!/bin/bash\necho "$@" >> "$SBATCH_CALLS"\nwc -l < "$SBATCH_CALLS"\n'
    )
    (fake_bin / "sbatch").chmod(0o755)
    calls = tmp_path / "sbatch_calls.txt"

    wait_for(
        start(
            project,
            ["bash", SLURM_SCRIPT],
            PATH=f"{fake_bin}{os.pathsep}{os.environ['PATH']}",
            SBATCH_CALLS=str(calls),
            GPUS_PER_RUN="2",
        )
    )

    submitted = calls.read_text().splitlines()
    assert len(submitted) == 3
    assert submitted[0].endswith(f"{SLURM_SCRIPT} data_processing")
    assert "--dependency=afterok:1 --array=0-1 --gres=gpu:2" in submitted[1]
    assert submitted[1].endswith("train")
    assert "--dependency=afterok:2" in submitted[2] and submitted[2].endswith("reporting")


def test_a_run_outside_the_grid_is_refused():
    with pytest.raises(
        ValueError, match=r"'kvasir.mit_b9.pld' is not a run .*kvasir.mit_b0.pld.seed42"
    ):
        run_one(clean_project(), "kvasir.mit_b9.pld", env="base")
