"""A real, small training run for the interruption tests: `python training_job.py RUN_DIR EPOCHS`.

It trains a tiny conv net with `train_segmenter` on in-memory disks, on the CPU, and prints
`EPOCH <n>` once epoch n is checkpointed. Each training sample sleeps a little, so an epoch
lasts about half a second and a test can kill the process in the middle of one.
"""

from __future__ import annotations

import logging
import random
import sys
import time

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from ssformer_repro.training.loop import TrainingConfig, seed_everything, train_segmenter

SIZE = 32
SECONDS_PER_SAMPLE = 0.06
CONSTANT_LR = {"name": "poly", "max_decay_steps": 1, "end_learning_rate": 1e-2}


class SlowDisks(Dataset):
    """Bright disks on noise, with augmentation drawn from python, numpy and torch RNGs."""

    def __init__(self, count: int = 8, augment: bool = True, slow: bool = True) -> None:
        generator = torch.Generator().manual_seed(0)
        rows, cols = torch.meshgrid(torch.arange(SIZE), torch.arange(SIZE), indexing="ij")
        self.samples = []
        for _ in range(count):
            centre = torch.randint(10, SIZE - 10, (2,), generator=generator)
            mask = ((rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 <= 36).float()
            image = 0.2 + 0.6 * mask + 0.1 * torch.randn(3, SIZE, SIZE, generator=generator)
            self.samples.append((image, mask[None]))
        self.augment = augment
        self.slow = slow

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict:
        if self.slow:
            time.sleep(SECONDS_PER_SAMPLE)
        image, mask = self.samples[index]
        if self.augment:
            if random.random() < 0.5:
                image, mask = image.flip(-1), mask.flip(-1)
            if np.random.rand() < 0.5:
                image, mask = image.flip(-2), mask.flip(-2)
            image = image + 0.05 * torch.randn_like(image)
        return {"image": image, "mask": mask, "id": f"disk_{index}"}


def tiny_model() -> nn.Module:
    seed_everything(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 1, 1),
    )


def report(line: str) -> None:
    """Tell the test (reading stdout) how far training got."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main(run_dir: str, epochs: int) -> None:
    logging.basicConfig(level=logging.INFO)  # to stderr: "resuming from ..." and epoch lines
    torch.set_num_threads(1)  # identical arithmetic in every process
    config = TrainingConfig(
        epochs=epochs, batch_size=2, lr=1e-2, scheduler=CONSTANT_LR, seed=0, device="cpu"
    )
    train_segmenter(
        tiny_model(),
        SlowDisks(),
        SlowDisks(augment=False, slow=False),
        config,
        run_dir,
        "killed-run",
        on_epoch_end=lambda row: report(f"EPOCH {row['epoch']}"),
    )
    report("DONE")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
