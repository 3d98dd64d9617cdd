"""Running out of memory or disk gives a message saying which, and what to do."""

from __future__ import annotations

import errno
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from ssformer_repro.storage import atomic as atomic_files
from ssformer_repro.storage.atomic import DiskFullError
from ssformer_repro.training.checkpoint import load_checkpoint, save_checkpoint
from ssformer_repro.training.failures import (
    OutOfMemoryError,
    explain_out_of_memory,
    explained_resource_errors,
)
from ssformer_repro.training.loop import train_segmenter
from tests.tiny import AllocatesTooMuch, DiskDataset, tiny_config, tiny_model


def hundred_terabytes(images: torch.Tensor) -> int:
    """50 TB per image: more than any machine's memory."""
    return len(images) * 50 * 2**40


def test_out_of_cpu_memory_during_training_names_run_and_batch_size_to_try(tmp_path: Path) -> None:
    disks = DiskDataset(count=8, augment=True)
    config = tiny_config(batch_size=4, lr=1e-4)
    model = AllocatesTooMuch(tiny_model(), 3, hundred_terabytes)  # epoch 2: 2 steps per epoch

    with pytest.raises(OutOfMemoryError) as raised:
        with explained_resource_errors("kvasir.mit_b5.pld", config.batch_size):
            train_segmenter(model, disks, disks, config, tmp_path, "kvasir.mit_b5.pld")

    message = str(raised.value)
    assert message.startswith("run 'kvasir.mit_b5.pld': out of CPU memory (RAM)")
    assert "training.batch_size 4" in message and "can't allocate memory" in message
    assert "Try training.batch_size: 2" in message
    assert "{kvasir.mit_b5.pld: {training: {batch_size: 2}}}" in message
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 1  # resumable


@pytest.mark.parametrize(
    ("batch_size", "processes", "advice"),
    [
        (32, 1, "Try training.batch_size: 16 for this run"),
        (8, 4, "Try training.batch_size: 4 for this run"),  # stays a multiple of 4 GPUs
        (1, 1, "training.batch_size is already 1, the smallest possible"),
        (4, 4, "training.batch_size is already 4, the smallest possible"),
    ],
)
def test_gpu_out_of_memory_says_gpu_and_the_batch_size_to_try(
    batch_size: int, processes: int, advice: str
) -> None:
    error = torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 ...")
    message = explain_out_of_memory(error, batch_size, "clinicdb.mit_b3.sed", processes)
    assert message.startswith("run 'clinicdb.mit_b3.sed': out of GPU memory")
    assert advice in message


def test_evaluation_out_of_memory_names_the_evaluation_setting() -> None:
    with pytest.raises(OutOfMemoryError, match=r"Try evaluation\.batch_size: 8.*evaluation: "):
        with explained_resource_errors("r", 16, setting="evaluation.batch_size"):
            raise torch.OutOfMemoryError("CUDA out of memory.")


def test_other_errors_pass_through_unchanged() -> None:
    with pytest.raises(ValueError, match="^a bug$"):
        with explained_resource_errors("r", 8):
            raise ValueError("a bug")


def test_full_disk_while_checkpointing_keeps_the_previous_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "last.pt"
    save_checkpoint({"epoch": 1}, path)

    def disk_full(descriptor: int) -> None:  # where delayed allocation reports ENOSPC
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic_files.os, "fsync", disk_full)
    with pytest.raises(DiskFullError, match=rf"no space left on device while writing {path}"):
        save_checkpoint({"epoch": 2}, path)
    monkeypatch.undo()

    assert load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_full_disk_in_training_stops_with_the_message_and_a_resumable_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    disks = DiskDataset(count=4, augment=True)
    config = tiny_config(lr=1e-4)
    saves = {"count": 0}
    real_fsync = atomic_files.os.fsync

    def full_after_epoch_one(descriptor: int) -> None:
        saves["count"] += 1
        if saves["count"] > 3:  # epoch 1 fsyncs best.pt, last.pt, last.json
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(descriptor)

    monkeypatch.setattr(atomic_files.os, "fsync", full_after_epoch_one)
    with pytest.raises(DiskFullError, match="no space left on device while writing"):
        with explained_resource_errors("full", config.batch_size):
            train_segmenter(tiny_model(), disks, disks, config, tmp_path, "full")
    monkeypatch.undo()

    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 1
    assert not list(tmp_path.glob(".*.partial*"))


FILL_THE_DISK_AND_SAVE = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    import pandas as pd, torch
    from ssformer_repro.storage.catalog import AtomicDataset
    from ssformer_repro.training.checkpoint import load_checkpoint, save_checkpoint

    folder = Path(sys.argv[1])
    save_checkpoint({"epoch": 1}, folder / "last.pt")
    table = AtomicDataset({"type": "pandas.CSVDataset"}, str(folder / "split.csv"))
    table.save(pd.DataFrame({"id": ["a"], "split": ["train"]}))
    with open(folder / "filler", "wb", buffering=0) as filler:  # fill it to the last byte
        try:
            while True:
                filler.write(b"x" * 4096)
        except OSError:
            pass
    for what, save in [
        ("checkpoint", lambda: save_checkpoint({"w": torch.ones(100_000)}, folder / "last.pt")),
        ("table", lambda: table.save(pd.DataFrame({"id": list("abcdefgh") * 5000}))),
    ]:
        try:
            save()
            print(what, "SAVED")
        except Exception as error:
            print(what, type(error).__name__, str(error).replace("\\n", " "))
    print("checkpoint epoch", load_checkpoint(folder / "last.pt")["epoch"])
    print("table rows", len(table.load()))
    print("left", sorted(p.name for p in folder.iterdir()))
    """
)


def _can_mount_a_tiny_disk(folder: Path) -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        [
            "unshare",
            "--user",
            "--map-root-user",
            "--mount",
            "sh",
            "-c",
            'mount -t tmpfs -o size=64k tmpfs "$0"',
            str(folder),
        ],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


def test_a_really_full_disk_keeps_checkpoint_and_table_and_says_so(tmp_path: Path) -> None:
    folder = tmp_path / "tiny-disk"
    folder.mkdir()
    if not _can_mount_a_tiny_disk(folder):
        pytest.skip("cannot mount a small tmpfs here (needs unprivileged user namespaces)")
    mount_and_run = 'mount -t tmpfs -o size=256k tmpfs "$0" && exec "$1" -c "$2" "$0"'
    result = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", mount_and_run]
        + [str(folder), sys.executable, FILL_THE_DISK_AND_SAVE],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("checkpoint DiskFullError [Errno 28] no space left on device")
    assert f"while writing {folder}/last.pt" in lines[0] and "is intact" in lines[0]
    assert lines[1].startswith("table DatasetError") and "no space left on device" in lines[1]
    assert lines[2:] == [
        "checkpoint epoch 1",
        "table rows 1",
        "left ['filler', 'last.pt', 'split.csv']",
    ]
