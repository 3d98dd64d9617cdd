"""The tiny models, training settings and in-memory datasets that the training tests share.

Importable by plain scripts too (tests/reliability/training_job.py runs in a subprocess);
tests/conftest.py offers the same as fixtures.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from ssformer_repro.grid.run_config import RunConfig, resolve_run
from ssformer_repro.training.checkpoint import load_checkpoint
from ssformer_repro.training.parts import seed_everything
from ssformer_repro.training.settings import TrainingSettings

SIZE = 32
# The poly schedule with base = end: a constant learning rate (of the config's lr, 1e-2 here).
CONSTANT_LR = {"name": "poly", "max_decay_steps": 1, "end_learning_rate": 1e-2}


class DiskDataset(Dataset):
    """Bright disks on a dark, noisy background, in the training dataset's dict contract.

    With `augment`, flips and noise are drawn from python's, numpy's and torch's global RNGs,
    as augmentation pipelines do; `seconds_per_sample` makes epochs long enough to kill one.
    """

    def __init__(
        self,
        count: int = 4,
        seed: int = 0,
        augment: bool = False,
        size: int = SIZE,
        seconds_per_sample: float = 0.0,
    ) -> None:
        generator = torch.Generator().manual_seed(seed)
        rows, cols = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
        self.images, self.masks = [], []
        for _ in range(count):
            margin = size * 5 // 16
            centre = torch.randint(margin, size - margin, (2,), generator=generator)
            radius = int(torch.randint(size // 8, size * 9 // 32, (1,), generator=generator))
            mask = ((rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 <= radius**2).float()
            noise = 0.1 * torch.randn(3, size, size, generator=generator)
            self.images.append(0.2 + 0.6 * mask + noise)
            self.masks.append(mask[None])
        self.augment = augment
        self.seconds_per_sample = seconds_per_sample

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict:
        if self.seconds_per_sample:
            time.sleep(self.seconds_per_sample)
        image, mask = self.images[index], self.masks[index]
        if self.augment:
            if random.random() < 0.5:
                image, mask = image.flip(-1), mask.flip(-1)
            if np.random.rand() < 0.5:
                image, mask = image.flip(-2), mask.flip(-2)
            image = image + 0.05 * torch.randn_like(image)
        return {"image": image, "mask": mask, "id": f"disk_{index}"}


class EvaluationDisks(Dataset):
    """DiskDataset under the evaluation dataset's contract (image, original-size mask, id, size)."""

    def __init__(self, count: int, seed: int, size: int = SIZE) -> None:
        self.disks = DiskDataset(count=count, seed=seed, size=size)

    def __len__(self) -> int:
        return len(self.disks)

    def __getitem__(self, index: int) -> dict:
        sample = self.disks[index]
        mask = sample["mask"][0].to(torch.uint8)
        return {"image": sample["image"], "mask": mask, "id": sample["id"], "size": mask.shape}


class AllocatesTooMuch(nn.Module):
    """`net`, whose training forward passes from step `first_greedy_step` on ask for
    `greedy_bytes(images)` bytes in one plain allocation: a real failed malloc."""

    def __init__(self, net: nn.Module, first_greedy_step: int, greedy_bytes) -> None:
        super().__init__()
        self.net, self.first_greedy_step, self.greedy_bytes = net, first_greedy_step, greedy_bytes
        self.steps = 0

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.steps += 1
            if self.steps >= self.first_greedy_step:
                torch.empty(self.greedy_bytes(images), dtype=torch.uint8, device=images.device)
        return self.net(images)


def torchrun_environment(rank: int, world_size: int, port: int) -> None:
    """The launch variables torchrun sets for one process on this host, and one torch thread."""
    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world_size),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    torch.set_num_threads(1)


def tiny_model(seed: int = 0, batch_norm: bool = True, first_bias: bool = True) -> nn.Module:
    """A three-convolution segmenter (one logit channel), seeded; BatchNorm optional."""
    seed_everything(seed)
    norm = [nn.BatchNorm2d(8)] if batch_norm else []
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=first_bias),
        *norm,
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 1, 1),
    )


def bn_model(seed: int = 0) -> nn.Module:
    """tiny_model with BatchNorm, its first convolution without a bias, for comparing two paths.

    A bias before BatchNorm gets a gradient of rounding noise only, which AdamW normalises to
    full-size steps of random sign: it would make any two numerically different paths diverge
    in that one tensor and say nothing about the paths."""
    return tiny_model(seed, batch_norm=True, first_bias=False)


def last(run_dir: Path) -> dict:
    """The run's last.pt checkpoint."""
    return load_checkpoint(Path(run_dir) / "last.pt")


def relative_difference(first, second) -> float:
    """The largest |first / second - 1| of two equal-length sequences (losses, say)."""
    first, second = np.asarray(first, dtype=float), np.asarray(second, dtype=float)
    return float(np.max(np.abs(first / second - 1)))


def channels_last_weights(model: nn.Module) -> list[bool]:
    """Whether each convolution weight is channels-last, of those whose layouts differ (a 1x1
    or depthwise kernel, with one input channel, is both layouts at once)."""
    return [
        p.is_contiguous(memory_format=torch.channels_last)
        for p in model.parameters()
        if p.ndim == 4 and p.shape[1] > 1 and p.shape[-1] > 1
    ]


def tiny_config(**overrides) -> TrainingSettings:
    """Three CPU epochs of batch 2 at a constant learning rate of 1e-2, seed 0."""
    settings = {
        "epochs": 3,
        "batch_size": 2,
        "lr": 1e-2,
        "scheduler": CONSTANT_LR,
        "seed": 0,
        "device": "cpu",
    }
    return TrainingSettings(**{**settings, **overrides})


def run_config(run, blocks: dict) -> RunConfig:
    """`run`'s configuration from parameter `blocks` (model, augmentation, evaluation...), with
    a one-epoch training block when they have none, as evaluation and inference tests need."""
    return resolve_run(run, {"training": {"epochs": 1, "batch_size": 2}, **blocks})
