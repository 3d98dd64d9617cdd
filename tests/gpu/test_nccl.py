"""A `torchrun --nproc_per_node=1` NCCL run on one GPU (marker `gpu`); tests/gpu/nccl_worker.py
says what the worker trains. Two processes over Gloo on the CPU are tests/training/
test_distributed.py and test_device_paths.py.

Tolerance against the same run in one plain process: per-epoch loss within 1e-3 relative and
weights within 1e-3 of each tensor's largest entry (with one process DDP averages over one
rank and SyncBatchNorm is BatchNorm, so only the kernels' run-to-run noise differs).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ssformer_repro.training.loop import train_segmenter
from tests.conftest import PROJECT_ROOT
from tests.gpu.common import bn_model, cuda_config, disks, last
from tests.tiny import relative_difference

pytestmark = pytest.mark.gpu

RTOL = 1e-3
WORKER = Path(__file__).with_name("nccl_worker.py")


@pytest.fixture(scope="module")
def nccl_runs(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("nccl")
    paths = [str(PROJECT_ROOT), str(PROJECT_ROOT / "src"), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc_per_node=1", str(WORKER), str(out)]
    finished = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-6000:]
    return out


def report(out: Path, run: str) -> dict:
    return json.loads((out / run / "report.json").read_text())


def test_torchrun_joins_nccl_and_wraps_the_model_in_ddp_with_sync_batch_norm(nccl_runs):
    for run, batch_norm_layers in (("bn", 1), ("mit", 1)):
        wrapped = report(nccl_runs, run)["wrapped"]
        assert wrapped["backend"] == "nccl"
        assert wrapped["wrapper"] == "DistributedDataParallel"
        assert wrapped["device"] == "cuda:0"
        assert wrapped["sync_batch_norm"] == batch_norm_layers and wrapped["plain_batch_norm"] == 0
        assert report(nccl_runs, run)["group_left"]  # the loop left its process group


def test_the_nccl_run_trains_like_one_plain_process(nccl_runs, tmp_path):
    data = disks(count=16, augment=False)
    config = cuda_config(amp="off", channels_last=True, epochs=2)
    single = train_segmenter(bn_model(), data, data, config, tmp_path, "single")

    history = report(nccl_runs, "bn")["history"]
    assert [row["epoch"] for row in history] == [1, 2]
    losses = np.array([row["train_loss"] for row in history])
    assert relative_difference(losses, single.history["train_loss"]) < RTOL
    nccl_weights, single_weights = last(nccl_runs / "bn")["model"], last(tmp_path)["model"]
    for name, tensor in single_weights.items():
        if tensor.is_floating_point():
            scale = float(tensor.abs().max()) or 1.0
            torch.testing.assert_close(nccl_weights[name], tensor, rtol=0, atol=RTOL * scale)


def test_ddp_trains_the_study_network_in_bf16(nccl_runs):
    (row,) = report(nccl_runs, "mit")["history"]
    assert math.isfinite(row["train_loss"]) and math.isfinite(row["val_mdice"])
    assert (nccl_runs / "mit" / "last.pt").is_file()
