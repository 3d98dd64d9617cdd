"""Data-parallel training: two Gloo processes on the CPU train exactly like one process.

The model has no BatchNorm: Gloo cannot run SyncBatchNorm, and BatchNorm statistics of each
process's half batch would differ from those of the whole batch in one process.
"""

import json
import socket
from pathlib import Path

import pandas as pd
import pytest
import torch
import torch.multiprocessing as mp

from ssformer_repro.training.checkpoint import load_checkpoint
from ssformer_repro.training.distributed import DistributedContext
from ssformer_repro.training.loop import train_segmenter
from ssformer_repro.training.settings import TrainingSettings
from tests.tiny import CONSTANT_LR, DiskDataset, tiny_model, torchrun_environment

SIZE = 16
COMPARED_COLUMNS = ["epoch", "lr", "train_loss", "val_mdice", "val_miou"]


def config(epochs: int) -> TrainingSettings:
    # Global batch 4 of 8 images: two optimiser steps per epoch, each on 2 images per process.
    return TrainingSettings(epochs=epochs, batch_size=4, lr=1e-2, scheduler=CONSTANT_LR)


def train_one_rank(rank: int, world_size: int, port: int, runs: list[tuple[str, int]]) -> None:
    """One torchrun-like process: the launch variables, then the same calls as single runs."""
    torchrun_environment(rank, world_size, port)
    dataset = DiskDataset(count=8, size=SIZE)
    for run_dir, epochs in runs:
        rows: list[dict] = []
        result = train_segmenter(
            tiny_model(batch_norm=False),
            dataset,
            dataset,
            config(epochs),
            run_dir,
            "ddp",
            rows.append,
        )
        report = {"rows": rows, "history": result.history.to_dict("records")}
        Path(run_dir, f"rank{rank}.json").write_text(json.dumps(report))


@pytest.fixture(scope="module")
def two_process_runs(tmp_path_factory) -> Path:
    """Two runs trained by two Gloo processes (one start-up, which dominates the time): `fresh`
    for 2 epochs from scratch, `resumed` for 3 epochs from a one-process `last.pt` of epoch 1."""
    root = tmp_path_factory.mktemp("ddp")
    dataset = DiskDataset(count=8, size=SIZE)
    train_segmenter(
        tiny_model(batch_norm=False), dataset, dataset, config(1), root / "resumed", "one"
    )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    runs = [(str(root / "fresh"), 2), (str(root / "resumed"), 3)]
    mp.spawn(train_one_rank, args=(2, port, runs), nprocs=2, join=True)
    return root


def rank_reports(run_dir: Path) -> list[dict]:
    return [json.loads((run_dir / f"rank{rank}.json").read_text()) for rank in (0, 1)]


def assert_close_weights(first: dict, second: dict) -> None:
    assert first.keys() == second.keys()
    for name, tensor in first.items():
        torch.testing.assert_close(tensor, second[name], rtol=1e-5, atol=1e-6)


def test_two_processes_train_like_one_with_the_same_global_batch(two_process_runs, tmp_path):
    dataset = DiskDataset(count=8, size=SIZE)
    single = train_segmenter(
        tiny_model(batch_norm=False), dataset, dataset, config(2), tmp_path, "one"
    )

    run_dir = two_process_runs / "fresh"
    assert_close_weights(
        load_checkpoint(tmp_path / "last.pt")["model"],
        load_checkpoint(run_dir / "last.pt")["model"],
    )
    for rank in rank_reports(run_dir):
        history = pd.DataFrame(rank["history"])[COMPARED_COLUMNS]
        pd.testing.assert_frame_equal(history, single.history[COMPARED_COLUMNS], rtol=1e-5)
    # Rank 0 alone reports epochs (MLflow) and writes the run's files; rank 1 only trains.
    reports = rank_reports(run_dir)
    assert [row["epoch"] for row in reports[0]["rows"]] == [1, 2] and reports[1]["rows"] == []
    written = sorted(path.name for path in run_dir.iterdir())
    assert written == [
        "best.pt",
        "last.json",
        "last.pt",
        "rank0.json",
        "rank1.json",
    ]


def test_two_processes_resume_a_one_process_checkpoint(two_process_runs, tmp_path):
    dataset = DiskDataset(count=8, size=SIZE)
    straight = train_segmenter(
        tiny_model(batch_norm=False), dataset, dataset, config(3), tmp_path, "one"
    )

    run_dir = two_process_runs / "resumed"
    reports = rank_reports(run_dir)
    assert [row["epoch"] for row in reports[0]["rows"]] == [2, 3]
    resumed = pd.DataFrame(reports[1]["history"])[COMPARED_COLUMNS]
    pd.testing.assert_frame_equal(resumed, straight.history[COMPARED_COLUMNS], rtol=1e-5)
    assert_close_weights(
        load_checkpoint(tmp_path / "last.pt")["model"],
        load_checkpoint(run_dir / "last.pt")["model"],
    )


def test_ranks_share_one_process_order_round_robin():
    dataset = DiskDataset(count=8, size=SIZE)
    alone = DistributedContext().sampler_for(dataset, seed=3)
    ranks = [DistributedContext(rank, 2, rank).sampler_for(dataset, seed=3) for rank in (0, 1)]
    for epoch in (1, 2):
        for sampler in (alone, *ranks):
            sampler.set_epoch(epoch)
        order = list(alone)
        assert list(ranks[0]) == order[0::2] and list(ranks[1]) == order[1::2]
    assert sorted(order) == list(range(8)) and order != list(range(8))


def test_context_from_torchrun_variables():
    launched = {"WORLD_SIZE": "4", "RANK": "5", "LOCAL_RANK": "1"}

    assert DistributedContext.from_env({}) == DistributedContext(rank=0, world_size=1)
    assert DistributedContext.from_env({"WORLD_SIZE": "1"}).is_main
    context = DistributedContext.from_env({**launched, "RANK": "2"})
    assert (context.rank, context.world_size, context.local_rank) == (2, 4, 1)
    assert context.is_distributed and not context.is_main
    with pytest.raises(RuntimeError, match=r"\['RANK'\] is not set.*torchrun"):
        DistributedContext.from_env({"WORLD_SIZE": "2", "LOCAL_RANK": "0"})
    with pytest.raises(RuntimeError, match="RANK=5 is outside WORLD_SIZE=4"):
        DistributedContext.from_env(launched)


def test_global_batch_must_split_evenly_over_processes(tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "0")
    dataset = DiskDataset(count=8, size=SIZE)

    with pytest.raises(ValueError, match=r"batch_size \(4\).*divisible.*processes \(3\)"):
        train_segmenter(
            tiny_model(batch_norm=False), dataset, dataset, config(1), tmp_path, "uneven"
        )
    assert not (tmp_path / "last.pt").exists()


def test_a_fixed_gpu_index_is_refused_under_torchrun():
    context = DistributedContext(rank=1, world_size=2, local_rank=1)

    with pytest.raises(ValueError, match="'cuda:1'.*LOCAL_RANK.*'auto' or 'cuda'"):
        context.device_for(torch.device("cuda", 1))
    assert context.device_for(torch.device("cpu")) == torch.device("cpu")


def test_backend_setting_is_checked():
    assert TrainingSettings(epochs=1, batch_size=2).distributed_backend == "auto"
    assert TrainingSettings(epochs=1, batch_size=2, distributed_backend="gloo")
    with pytest.raises(
        ValueError, match="distributed_backend\n  Input should be 'auto', 'nccl' or 'gloo'"
    ):
        TrainingSettings(epochs=1, batch_size=2, distributed_backend="mpi")
