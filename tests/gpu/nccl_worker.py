"""One process of tests/gpu/test_nccl.py, started by `torchrun --nproc_per_node=1`.

    python -m torch.distributed.run --standalone --nproc_per_node=1 tests/gpu/nccl_worker.py OUT

With one process (WORLD_SIZE=1) the training loop takes its single-process path. To run the
path of every rank of a multi-GPU run on one GPU, this worker marks its context distributed:
the loop then joins an NCCL process group (`distributed_backend: auto` on CUDA), converts
BatchNorm to SyncBatchNorm, wraps the model in DistributedDataParallel, shards the batches with
the DistributedSampler and all-reduces and broadcasts its figures through NCCL. It trains

- `bn`: tests/gpu/common.py's BatchNorm model, channels-last, fp32 settings, 2 epochs, which the
  test compares with the same run in one plain process;
- `mit`: MiT-B0 + SeD with the CUDA defaults (bf16, channels-last, fused AdamW), 1 epoch: DDP
  over the study's network (every parameter must get a gradient, or DDP stops).

and writes OUT/<run>/report.json: the history, what wrap_model returned, the backend in use.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch.distributed as dist
from torch import nn

from ssformer_repro.training.distributed import DistributedContext
from ssformer_repro.training.loop import train_segmenter
from tests.gpu.common import bn_model, cuda_config, disks, mit_model

RUNS = {
    "bn": (bn_model, {"amp": "off", "channels_last": True, "epochs": 2}),
    "mit": (mit_model, {"epochs": 1}),
}


def main(out: Path) -> None:
    if os.environ.get("WORLD_SIZE") != "1" or "LOCAL_RANK" not in os.environ:
        sys.exit("start this worker with torchrun --nproc_per_node=1")
    DistributedContext.is_distributed = property(lambda self: True)
    seen: dict = {}
    wrap_model = DistributedContext.wrap_model

    def recording_wrap_model(self, model, device):
        wrapped = wrap_model(self, model, device)
        seen.update(
            backend=dist.get_backend(),
            wrapper=type(wrapped).__name__,
            device=str(device),
            sync_batch_norm=sum(isinstance(m, nn.SyncBatchNorm) for m in wrapped.modules()),
            plain_batch_norm=sum(type(m) is nn.BatchNorm2d for m in wrapped.modules()),
        )
        return wrapped

    DistributedContext.wrap_model = recording_wrap_model
    data = disks(count=16, augment=False)  # no augmentation: ranks re-seed it every epoch
    for name, (build, settings) in RUNS.items():
        seen.clear()
        result = train_segmenter(
            build(), data, data, cuda_config(**settings), out / name, f"nccl-{name}"
        )
        report = {
            "history": result.history.to_dict("records"),
            "wrapped": dict(seen),
            "group_left": not dist.is_initialized(),
        }
        (out / name / "report.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
