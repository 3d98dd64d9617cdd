"""What a training run is made of: where its batches run (`Placement`) and its stateful parts
(`RunParts`: model, optimiser, schedule, grad scaler, loader RNG), saved to `last.pt` together.

Public so that the benchmark (ssformer_repro.benchmark) times the very step the loop runs.
"""

import random
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ssformer_repro.training.checkpoint import capture_rng_state, restore_rng_state
from ssformer_repro.training.device import AmpSettings, amp_settings, resolve_device
from ssformer_repro.training.distributed import DistributedContext
from ssformer_repro.training.schedules import build_scheduler
from ssformer_repro.training.settings import TrainingSettings, resolve_auto


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA); call it before building the model, too."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass(frozen=True)
class Placement:
    """Where batches run: the device, its autocast settings and the memory format of images."""

    device: torch.device
    amp: AmpSettings
    memory_format: torch.memory_format

    @classmethod
    def for_config(cls, config: TrainingSettings, context: DistributedContext) -> "Placement":
        """Resolve the device (this process's GPU under torchrun), AMP and channels-last."""
        device = context.device_for(resolve_device(config.device))
        channels_last = resolve_auto(config.channels_last, device.type == "cuda")
        return cls(
            device=device,
            amp=amp_settings(device, config.amp),
            memory_format=torch.channels_last if channels_last else torch.preserve_format,
        )

    def batch(self, batch: Mapping) -> tuple[torch.Tensor, torch.Tensor]:
        """Images and masks of a batch dict, copied to the device."""
        images = batch["image"].to(self.device, non_blocking=True, memory_format=self.memory_format)
        masks = batch["mask"].to(self.device, non_blocking=True)
        return images, masks

    def autocast(self) -> torch.autocast:
        """Autocast context for the forward pass (disabled on CPU)."""
        return torch.autocast(self.device.type, dtype=self.amp.dtype, enabled=self.amp.enabled)


@dataclass
class RunParts:
    """The stateful parts of a run, saved to and restored from `last.pt` together.

    `model` is the raw model: the one whose weights are saved; training may call it wrapped
    (DistributedDataParallel, torch.compile).
    """

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    loader_generator: torch.Generator

    @classmethod
    def build(cls, model: nn.Module, config: TrainingSettings, placement: Placement) -> "RunParts":
        """Move the model to the device and build AdamW, the schedule and the gradient scaler."""
        fused = resolve_auto(config.fused_optimizer, placement.device.type == "cuda")
        model.to(placement.device, memory_format=placement.memory_format)
        optimizer = torch.optim.AdamW(
            model.parameters(), lr=config.lr, weight_decay=config.weight_decay, fused=fused
        )
        return cls(
            model=model,
            optimizer=optimizer,
            scheduler=build_scheduler(optimizer, config.scheduler),
            scaler=torch.amp.GradScaler(
                placement.device.type, enabled=placement.amp.use_grad_scaler
            ),
            loader_generator=torch.Generator().manual_seed(config.seed),
        )

    def state_dict(self) -> dict:
        """States of all parts plus the global RNGs, as stored in `last.pt`."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "grad_scaler": self.scaler.state_dict(),
            "rng": capture_rng_state(),
            "loader_rng": self.loader_generator.get_state(),
        }

    def load_state_dict(self, checkpoint: Mapping) -> None:
        """Restore what `state_dict` stored (the scheduler after the optimizer, as torch advises)."""
        self.model.load_state_dict(checkpoint["model"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.scheduler.load_state_dict(checkpoint["scheduler"])
        self.scaler.load_state_dict(checkpoint["grad_scaler"])
        restore_rng_state(checkpoint["rng"])
        self.loader_generator.set_state(checkpoint["loader_rng"])
