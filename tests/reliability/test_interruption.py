"""A training process killed at any moment resumes from its last checkpoint, with identical results.

The kills are real SIGKILLs of real training subprocesses (tests/reliability/training_job.py),
as an out-of-memory kill or a power loss would stop them: no exception handler runs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from ssformer_repro.storage.atomic import remove_partial_writes
from ssformer_repro.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint

JOB = Path(__file__).with_name("training_job.py")
EPOCHS = 6
METRIC_COLUMNS = ["epoch", "lr", "train_loss", "val_mdice", "val_miou"]


def start_job(run_dir: Path, log: Path) -> subprocess.Popen:
    """Start the training job; its stdout (EPOCH lines) is piped, its stderr goes to `log`."""
    return subprocess.Popen(
        [sys.executable, str(JOB), str(run_dir), str(EPOCHS)],
        stdout=subprocess.PIPE,
        stderr=log.open("w"),
        text=True,
    )


def wait_for_line(process: subprocess.Popen, wanted: str, log: Path) -> list[str]:
    """Read the job's stdout until the line `wanted`; return the lines read."""
    lines = []
    for line in process.stdout:
        lines.append(line.strip())
        if lines[-1] == wanted:
            return lines
    process.wait()
    raise AssertionError(f"job ended ({process.returncode}) before {wanted!r}:\n{log.read_text()}")


def run_to_end(run_dir: Path, log: Path) -> list[str]:
    job = start_job(run_dir, log)
    lines = wait_for_line(job, "DONE", log)
    assert job.wait(timeout=60) == 0, log.read_text()
    return lines


def history(run_dir: Path) -> pd.DataFrame:
    return pd.DataFrame(load_checkpoint(run_dir / "last.pt")["history"])[METRIC_COLUMNS]


def test_killed_mid_epoch_resumes_and_ends_like_an_uninterrupted_run(tmp_path: Path) -> None:
    straight_dir, killed_dir = tmp_path / "straight", tmp_path / "killed"
    straight = start_job(straight_dir, tmp_path / "straight.log")  # runs alongside

    victim = start_job(killed_dir, tmp_path / "killed.log")
    wait_for_line(victim, "EPOCH 2", tmp_path / "killed.log")
    time.sleep(0.25)  # about half of epoch 3
    victim.send_signal(signal.SIGKILL)
    assert victim.wait(timeout=30) == -signal.SIGKILL

    interrupted = load_checkpoint(killed_dir / "last.pt")
    assert interrupted["epoch"] == 2  # the last completed epoch: only epoch 3's half is lost
    assert [row["epoch"] for row in interrupted["history"]] == [1, 2]

    resumed_lines = run_to_end(killed_dir, tmp_path / "resumed.log")
    assert resumed_lines == [f"EPOCH {epoch}" for epoch in range(3, EPOCHS + 1)] + ["DONE"]
    assert "resuming from" in (tmp_path / "resumed.log").read_text()

    wait_for_line(straight, "DONE", tmp_path / "straight.log")
    assert straight.wait(timeout=60) == 0
    pd.testing.assert_frame_equal(history(killed_dir), history(straight_dir))
    resumed_weights = load_checkpoint(killed_dir / "last.pt")["model"]
    straight_weights = load_checkpoint(straight_dir / "last.pt")["model"]
    for name, tensor in straight_weights.items():
        assert torch.equal(resumed_weights[name], tensor), name
    saved = json.loads((killed_dir / "last.json").read_text())["history"]
    pd.testing.assert_frame_equal(
        pd.DataFrame(saved)[METRIC_COLUMNS], history(straight_dir), check_dtype=False
    )


WRITER_KILLED_MID_CHECKPOINT = textwrap.dedent(
    """
    import io, sys, time
    import torch
    from ssformer_repro.storage.atomic import write_atomically

    def half_then_hang(file):
        buffer = io.BytesIO()
        torch.save({"epoch": 2, "weights": torch.full((4096,), 2.0)}, buffer)
        file.write(buffer.getvalue()[: buffer.tell() // 2])
        file.flush()
        print("HALF WRITTEN", flush=True)
        time.sleep(60)

    write_atomically(sys.argv[1], half_then_hang)
    """
)


def test_checkpoint_killed_mid_write_keeps_the_previous_one(tmp_path: Path) -> None:
    path = tmp_path / "last.pt"
    save_checkpoint({"epoch": 1, "weights": torch.ones(4096)}, path)

    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER_KILLED_MID_CHECKPOINT, str(path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert writer.stdout.readline().strip() == "HALF WRITTEN"
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait(timeout=30)

    assert load_checkpoint(path)["epoch"] == 1  # the previous checkpoint, complete
    partial = list(tmp_path.glob(".last.*.partial.pt"))
    assert len(partial) == 1  # the half-written file never took the real name ...
    with pytest.raises(CheckpointError, match="corrupt, truncated"):
        load_checkpoint(partial[0])  # ... and would be refused if anyone read it
    assert remove_partial_writes(tmp_path) == partial
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]
