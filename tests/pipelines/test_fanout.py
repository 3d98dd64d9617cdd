"""The grid fans out: its runs, started as separate concurrent processes by the SLURM recipe
(scripts/slurm_grid.sbatch), report exactly what one sequential `kedro run` reports."""

from __future__ import annotations

import getpass
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
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
# Debian's slurm-wlm and munge, which `.ci/setup --test` installs.
SLURM_TOOLS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scontrol", "scancel")
SKIP_SLURM = "SSFORMER_SKIP_SLURM"
SBIN_PATH = os.pathsep.join([os.environ["PATH"], "/usr/sbin", "/sbin"])  # the daemons


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


def test_a_cpu_partition_gets_no_gres_and_a_bad_gpu_count_is_refused(tmp_path):
    project = small_demo_project(tmp_path / "project")
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "sbatch").write_text('#!/bin/bash\necho "$@" >> "$SBATCH_CALLS"\necho 1\n')
    (fake_bin / "sbatch").chmod(0o755)
    calls = tmp_path / "sbatch_calls.txt"
    path = f"{fake_bin}{os.pathsep}{os.environ['PATH']}"

    wait_for(
        start(project, ["bash", SLURM_SCRIPT], PATH=path, SBATCH_CALLS=str(calls), GPUS_PER_RUN="0")
    )
    assert "--array=0-1" in calls.read_text() and "--gres" not in calls.read_text()

    refused = subprocess.run(
        ["bash", SLURM_SCRIPT],
        cwd=project,
        env={**os.environ, "PATH": path, "MLFLOW_TRACKING_URI": "x", "GPUS_PER_RUN": "one"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert refused.returncode == 2
    assert "GPUS_PER_RUN must be a whole number of GPUs (0 on a CPU partition), not 'one'" in (
        refused.stderr
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


SLURM_CONF = """\
ClusterName=ssformer-test
SlurmctldHost={node}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={folder}/munge.socket
SlurmUser={user}
SlurmdUser={user}
StateSaveLocation={folder}/state
SlurmdSpoolDir={folder}/spool
SlurmctldPidFile={folder}/slurmctld.pid
SlurmdPidFile={folder}/slurmd.pid
SlurmctldLogFile={folder}/slurmctld.log
SlurmdLogFile={folder}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
MpiDefault=none
ReturnToService=2
# The recipe's #SBATCH lines ask 8 CPUs and 32 GB per job: the node claims enough for two jobs.
SlurmdParameters=config_overrides
NodeName={node} NodeAddr=127.0.0.1 CPUs=16 RealMemory=65536 State=UNKNOWN
PartitionName=cpu Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


@pytest.fixture
def slurm_cluster():
    """A single-node SLURM cluster on localhost without GPUs (its own munged, slurmctld and
    slurmd, configured in a temporary folder); yields the environment that reaches it."""
    missing = [tool for tool in SLURM_TOOLS if shutil.which(tool, path=SBIN_PATH) is None]
    if missing and os.environ.get(SKIP_SLURM) == "1":
        pytest.skip(f"{SKIP_SLURM}=1 and missing {', '.join(missing)}")
    if missing:
        pytest.fail(
            f"the SLURM test needs {', '.join(missing)} (Debian's slurm-wlm): run "
            f".ci/setup --test (or set {SKIP_SLURM}=1 to skip this test explicitly)",
            pytrace=False,
        )
    # munged wants its socket's folders open to all: not under pytest's private tmp_path.
    folder = Path(tempfile.mkdtemp(prefix="ssformer-slurm-"))
    folder.chmod(0o755)
    for name in ("state", "spool"):
        (folder / name).mkdir()
    (folder / "munge.key").write_bytes(os.urandom(1024))
    (folder / "munge.key").chmod(0o600)
    node = socket.gethostname().split(".")[0]
    conf = folder / "slurm.conf"
    conf.write_text(
        SLURM_CONF.format(
            node=node,
            folder=folder,
            user=getpass.getuser(),
            ctld_port=free_port(),
            slurmd_port=free_port(),
        )
    )
    env = {**os.environ, "SLURM_CONF": str(conf), "PATH": SBIN_PATH}
    munged = ["munged", "--foreground", f"--socket={folder}/munge.socket"]
    munged += [f"--key-file={folder}/munge.key", f"--log-file={folder}/munged.log"]
    munged += [f"--pid-file={folder}/munged.pid", f"--seed-file={folder}/munged.seed"]
    daemons = []
    try:
        for command in (munged, ["slurmctld", "-D", "-c", "-i"], ["slurmd", "-D", "-N", node]):
            with (folder / f"{command[0]}.out").open("w") as output:
                daemons.append(
                    subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
                )
            if command[0] == "munged":
                wait_until((folder / "munge.socket").exists, 10, folder)
        node_state = ["sinfo", "--noheader", "--format=%t"]
        wait_until(lambda: slurm(env, *node_state).strip() == "idle", 60, folder)
        yield env
    finally:
        if daemons:
            subprocess.run(["scancel", f"--user={getpass.getuser()}"], env=env, check=False)
        for daemon in reversed(daemons):
            daemon.terminate()
            try:
                daemon.wait(timeout=30)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
        shutil.rmtree(folder, ignore_errors=True)


def slurm(env: dict[str, str], *command: str) -> str:
    """A SLURM client command's output."""
    return subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout


def wait_until(condition, seconds: float, logs: Path) -> None:
    """Poll `condition` until it holds; fail with the cluster's logs after `seconds`."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            found = sorted([*logs.glob("*.log"), *logs.glob("*.out")])
            tails = {log.name: log.read_text()[-2000:] for log in found}
            raise AssertionError(f"the SLURM cluster did not get there in {seconds} s: {tails}")
        time.sleep(0.5)


def test_the_documented_array_recipe_runs_on_a_real_cpu_only_slurm(slurm_cluster, tmp_path):
    """docs/scaling.md's recipe, as documented, on a cluster without GPUs: submit from the
    project root, then data_processing, the array job (one training per run) and reporting."""
    project = small_demo_project(tmp_path / "project")

    tiny = SMALL_DEMO.replace("n_images=40", "n_images=20").replace("epochs=2", "epochs=1")
    submitted = start(
        project, ["bash", SLURM_SCRIPT], GPUS_PER_RUN="0", KEDRO_PARAMS=tiny, **slurm_cluster
    )
    wait_for(submitted)
    line = submitted[1].read_text().strip().splitlines()[-1]
    jobs = re.fullmatch(
        r"data_processing: job (\d+); 2 runs: array job (\d+); reporting: job (\d+)", line
    )
    assert jobs, line
    wait_until(lambda: slurm(slurm_cluster, "squeue", "--noheader").strip() == "", 600, project)

    states = {
        job: re.findall(r"JobState=(\S+)", slurm(slurm_cluster, "scontrol", "show", "job", job))
        for job in jobs.groups()
    }
    outputs = {log.name: log.read_text() for log in sorted(project.glob("slurm-*.out"))}
    assert list(states.values()) == [["COMPLETED"], ["COMPLETED", "COMPLETED"], ["COMPLETED"]], (
        states,
        {name: output[-3000:] for name, output in outputs.items()},
    )
    assert sorted(name for name in outputs if "-train-" in name) == [
        f"slurm-ssformer-train-{jobs[2]}_{task}.out" for task in (0, 1)
    ]
    trained = [output for name, output in outputs.items() if "-train-" in name]
    assert all("on the CPU" in output for output in trained)
    runs = pd.read_csv(reporting_file(project, "runs.csv"))
    assert sorted(runs["run"]) == RUNS
    assert runs["mdice"].between(0, 100).all()
