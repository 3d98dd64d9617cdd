"""Data-parallel training (DDP) of one run across the processes that `torchrun` starts.

torchrun gives each process WORLD_SIZE, RANK and LOCAL_RANK. Without them a run is one process
and every helper here does nothing special, so the training loop keeps a single code path: the
same sampler, the same loop; only rank 0 validates and writes files.
"""

import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Dataset, DistributedSampler

logger = logging.getLogger(__name__)

# `distributed_backend: auto` picks the backend from the device type.
BACKENDS = {"cuda": "nccl", "cpu": "gloo"}
LAUNCH_VARIABLES = ("RANK", "LOCAL_RANK", "WORLD_SIZE")


@dataclass(frozen=True)
class DistributedContext:
    """This process's place in a run: rank among `world_size` processes, GPU index on its node."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> "DistributedContext":
        """Read torchrun's variables; a single process (no WORLD_SIZE, or 1) is rank 0 of 1."""
        if int(environ.get("WORLD_SIZE", "1")) <= 1:
            return cls()
        missing = [name for name in LAUNCH_VARIABLES if name not in environ]
        if missing:
            raise RuntimeError(
                f"WORLD_SIZE={environ['WORLD_SIZE']} but {missing} is not set; start "
                "multi-process training with torchrun (docs/scaling.md)."
            )
        context = cls(
            rank=int(environ["RANK"]),
            world_size=int(environ["WORLD_SIZE"]),
            local_rank=int(environ["LOCAL_RANK"]),
        )
        if not 0 <= context.rank < context.world_size:
            raise RuntimeError(f"RANK={context.rank} is outside WORLD_SIZE={context.world_size}.")
        return context

    @property
    def is_distributed(self) -> bool:
        """Whether several processes train this run together."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Whether this process is rank 0, the one that validates and writes files."""
        return self.rank == 0

    def per_process_batch_size(self, batch_size: int) -> int:
        """Each process's share of the global batch `batch_size`, which must split evenly."""
        if batch_size % self.world_size:
            raise ValueError(
                f"training setting batch_size ({batch_size}) is the global batch and must be "
                f"divisible by the number of processes ({self.world_size}); change batch_size "
                "or --nproc_per_node."
            )
        return batch_size // self.world_size

    def device_for(self, device: torch.device) -> torch.device:
        """This process's device: its own GPU, cuda:LOCAL_RANK, when several processes use CUDA."""
        if not self.is_distributed or device.type != "cuda":
            return device
        if device.index is not None:
            raise ValueError(
                f"training setting device is {str(device)!r}, but under torchrun each process "
                "uses the GPU of its LOCAL_RANK; set device to 'auto' or 'cuda' (choose GPUs with "
                "CUDA_VISIBLE_DEVICES)."
            )
        device = torch.device("cuda", self.local_rank)
        torch.cuda.set_device(device)
        return device

    @contextmanager
    def process_group(self, backend: str, device: torch.device) -> Iterator[None]:
        """Join the run's process group for the `with` block, and leave it after (alone: no-op).

        `backend` "auto" is NCCL on CUDA and Gloo on the CPU. A group the caller already
        initialised is used as it is and left open.
        """
        if not self.is_distributed or dist.is_initialized():
            yield
            return
        backend = BACKENDS[device.type] if backend == "auto" else backend
        dist.init_process_group(
            backend,
            rank=self.rank,
            world_size=self.world_size,
            device_id=device if device.type == "cuda" else None,
        )
        try:
            yield
        finally:
            dist.destroy_process_group()

    def barrier(self) -> None:
        """Wait until every process has reached this point."""
        if self.is_distributed:
            dist.barrier()

    def wrap_model(self, model: nn.Module, device: torch.device) -> nn.Module:
        """`model` in DistributedDataParallel (gradients averaged over processes), or as it is.

        On CUDA, BatchNorm layers become SyncBatchNorm, so that their statistics are taken over
        the global batch as in a one-GPU run; Gloo on the CPU cannot synchronise them.
        """
        if not self.is_distributed:
            return model
        if device.type == "cuda":
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        elif any(isinstance(layer, nn.modules.batchnorm._BatchNorm) for layer in model.modules()):
            logger.warning(
                "BatchNorm layers normalise each process's part of the batch: SyncBatchNorm "
                "needs CUDA, so results differ slightly from a one-process run."
            )
        return DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )

    def sampler_for(self, dataset: Dataset, seed: int) -> DistributedSampler:
        """The training order: a permutation of `dataset` drawn from `seed` + epoch (call
        `set_epoch`), dealt round-robin to the processes; one process gets all of it."""
        return DistributedSampler(
            dataset, num_replicas=self.world_size, rank=self.rank, shuffle=True, seed=seed
        )

    def rank_seed(self, seed: int, epoch: int) -> int:
        """A seed for this process's augmentations in `epoch`: different on every rank."""
        return int(np.random.SeedSequence([seed, epoch, self.rank]).generate_state(1)[0])

    def mean(self, value: float, device: torch.device) -> float:
        """The mean of `value` over all processes."""
        return self._all_reduce(value, device) / self.world_size

    def sum(self, value: float, device: torch.device) -> float:
        """The sum of `value` over all processes."""
        return self._all_reduce(value, device)

    def _all_reduce(self, value: float, device: torch.device) -> float:
        if not self.is_distributed:
            return value
        total = torch.tensor(value, dtype=torch.float64, device=device)
        dist.all_reduce(total)
        return total.item()

    def broadcast_from_main(self, value: object) -> object:
        """Rank 0's `value` on every process (a picklable object)."""
        if not self.is_distributed:
            return value
        holder = [value]
        dist.broadcast_object_list(holder, src=0)
        return holder[0]
