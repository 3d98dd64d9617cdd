"""What the CUDA tests share: small real models, their data and settings (no CUDA needed to
import, so that the tests collect, and are skipped, on a machine without a GPU)."""

from __future__ import annotations

from torch import nn

from ssformer_repro.training.parts import seed_everything
from ssformer_repro.training.settings import TrainingSettings
from tests.tiny import DiskDataset, bn_model, channels_last_weights, last, tiny_config

__all__ = ["bn_model", "channels_last_weights", "cuda_config", "disks", "last", "mit_model"]

BACKBONE, HEAD = "mit_b0", "sed"  # the smallest MiT, with SegFormer's head: a real network
SIZE = 128  # px: a few ms per step on a GPU, all four MiT stages still above 1 px
CONSTANT_LR = {"name": "poly", "max_decay_steps": 1, "end_learning_rate": 1e-3}


def mit_model(seed: int = 0) -> nn.Module:
    """MiT-B0 + SeD from scratch (no downloads), seeded."""
    from ssformer_repro.models import build_model

    seed_everything(seed)
    return build_model(BACKBONE, HEAD)


def disks(count: int = 16, size: int = SIZE, seed: int = 0, augment: bool = True) -> DiskDataset:
    return DiskDataset(count=count, seed=seed, augment=augment, size=size)


def cuda_config(**overrides) -> TrainingSettings:
    """Two CUDA epochs of batch 4 at a constant learning rate of 1e-3, one loader process."""
    settings = dict(epochs=2, batch_size=4, lr=1e-3, scheduler=CONSTANT_LR, device="cuda")
    return tiny_config(**{**settings, "num_workers": 0, **overrides})
