"""Two runs writing the same outputs at once: the second is refused, naming the holder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from kedro.pipeline import node, pipeline

from ssformer_repro.hooks import RunLockHook
from ssformer_repro.storage.locks import RunLockedError, namespace_lock_path, run_lock

HOLD_LOCK = textwrap.dedent(
    """
    import sys, time
    from ssformer_repro.storage.locks import run_lock

    with run_lock(sys.argv[1]):
        print("LOCKED", flush=True)
        time.sleep(60)
    """
)


@pytest.fixture
def other_process_holding(tmp_path: Path):
    """Start a process that holds the lock `tmp_path/run/.lock`; yield (process, lock path)."""
    lock_path = tmp_path / "run" / ".lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(lock_path)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "LOCKED"
    yield holder, lock_path
    if holder.poll() is None:
        holder.kill()
        holder.wait()


def test_second_writer_is_refused_naming_the_lock_and_its_holder(other_process_holding) -> None:
    holder, lock_path = other_process_holding

    with pytest.raises(RunLockedError) as refused:
        with run_lock(lock_path):
            pytest.fail("the lock was granted twice")

    message = str(refused.value)
    assert str(lock_path) in message
    assert f"process {holder.pid} on host" in message
    assert "Wait for it to finish" in message


def test_lock_of_a_killed_process_is_free_at_once(other_process_holding) -> None:
    holder, lock_path = other_process_holding
    holder.send_signal(signal.SIGKILL)  # no cleanup runs: the lock file stays behind
    holder.wait()
    assert lock_path.exists()

    holder_file = lock_path.with_name(lock_path.name + ".holder")
    with run_lock(lock_path):
        recorded = json.loads(holder_file.read_text())
        assert recorded["pid"] == os.getpid()  # the holder file now names the new holder
    assert not holder_file.exists()  # released: nobody named


def test_lock_is_reusable_after_release_and_held_within_one_process(tmp_path: Path) -> None:
    lock_path = tmp_path / ".lock"
    with run_lock(lock_path):
        with pytest.raises(RunLockedError), run_lock(lock_path):
            pass
    with run_lock(lock_path):
        pass


def test_only_rank_zero_takes_the_lock_under_torchrun(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock_path = tmp_path / ".lock"
    with run_lock(lock_path):
        monkeypatch.setenv("RANK", "1")
        with run_lock(lock_path):  # the rank-0 process of the same run holds it: no refusal
            pass


def _identity(value):
    return value


def grid_pipeline(*namespaces: str):
    """A Kedro pipeline with one node per namespace, as the project's pipelines are built."""
    return sum(
        (
            pipeline([node(_identity, "input", "output", name="step")], namespace=namespace)
            for namespace in namespaces
        ),
        start=pipeline([]),
    )


def test_hook_locks_each_namespace_of_a_run_before_any_node(tmp_path: Path) -> None:
    run_params = {"project_path": str(tmp_path)}
    first, second, disjoint = RunLockHook(), RunLockHook(), RunLockHook()

    first.before_pipeline_run(run_params, grid_pipeline("kvasir", "kvasir.mit_b0.pld"), None)
    with pytest.raises(RunLockedError, match=r"kvasir\.mit_b0\.pld\.lock is locked by process"):
        second.before_pipeline_run(run_params, grid_pipeline("kvasir.mit_b0.pld"), None)
    # A run of other namespaces (another GPU's share of the grid) is not held up.
    disjoint.before_pipeline_run(run_params, grid_pipeline("clinicdb.mit_b0.pld"), None)
    disjoint.after_pipeline_run(run_params, None, None)

    first.on_pipeline_error(RuntimeError("boom"), run_params, None, None)
    second.before_pipeline_run(run_params, grid_pipeline("kvasir.mit_b0.pld"), None)
    second.after_pipeline_run(run_params, None, None)
    assert namespace_lock_path(tmp_path / "data/.locks", "kvasir").is_file()


def test_second_kedro_run_of_the_same_outputs_is_refused_before_any_work(tmp_path: Path) -> None:
    """Needs RunLockHook in settings.HOOKS (docs/reliability.md)."""
    from tests.conftest import copy_project, kedro

    (tmp_path / "project").mkdir()
    project = copy_project(tmp_path / "project")
    # The demo writes under data/demo (its data_root), and so do its locks.
    lock_path = namespace_lock_path(project / "data/demo/.locks", "synth_kvasir")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(lock_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "LOCKED"
        refused = kedro(
            project,
            "run",
            "--pipelines=data_processing",
            "--namespaces=synth_kvasir",
            "--env=demo",
            check=False,
        )
    finally:
        holder.kill()
        holder.wait()

    output = refused.stdout + refused.stderr
    assert refused.returncode != 0
    assert "synth_kvasir.lock is locked by process" in output and str(holder.pid) in output
    assert not (project / "data/demo/02_intermediate").exists()  # no node ran
    assert not (project / "mlflow.db").exists()  # refused before an MLflow run was opened
