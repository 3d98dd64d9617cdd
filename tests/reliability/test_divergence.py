"""A non-finite loss stops the run naming it and the step; fp16 skipped steps are only counted."""

from __future__ import annotations

import functools
import logging
import math
from pathlib import Path

import pytest
import torch
from torch import nn

from ssformer_repro.training import parts
from ssformer_repro.training.checkpoint import load_checkpoint
from ssformer_repro.training.device import FP16
from ssformer_repro.training.failures import applied_updates, count_skipped_steps
from ssformer_repro.training.loop import NonFiniteLossError, train_segmenter
from tests.tiny import DiskDataset, tiny_model
from tests.tiny import tiny_config as config


class BlowsUpInEpoch(nn.Module):
    """The tiny model, whose training outputs turn to inf from a given training step on."""

    def __init__(self, first_bad_step: int) -> None:
        super().__init__()
        self.net = tiny_model()
        self.first_bad_step = first_bad_step
        self.steps = 0

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        logits = self.net(images)
        if self.training:
            self.steps += 1
            if self.steps >= self.first_bad_step:
                return logits * math.inf
        return logits


def test_non_finite_loss_stops_naming_run_and_step_and_keeps_the_last_good_checkpoint(
    tmp_path: Path,
) -> None:
    disks = DiskDataset(count=8, augment=True)  # 8 images, batch 2: 4 steps per epoch
    model = BlowsUpInEpoch(first_bad_step=11)  # epoch 3, its step 3

    with pytest.raises(NonFiniteLossError, match=r"run 'diverged'.*epoch 3/3.*at step 3 of 4"):
        train_segmenter(model, disks, disks, config(), tmp_path, "diverged")

    kept = load_checkpoint(tmp_path / "last.pt")
    assert kept["epoch"] == 2
    assert all(torch.isfinite(tensor).all() for tensor in kept["model"].values())
    assert [row["epoch"] for row in kept["history"]] == [1, 2]
    assert load_checkpoint(tmp_path / "best.pt")["epoch"] in (1, 2)

    # The kept checkpoint is a working resume point: a fixed model finishes the run from it.
    fixed = BlowsUpInEpoch(first_bad_step=10**9)
    rows = []
    train_segmenter(fixed, disks, disks, config(), tmp_path, "diverged", rows.append)
    assert [row["epoch"] for row in rows] == [3]


def fp16_steps(scaler: torch.amp.GradScaler, steps: int) -> tuple[torch.optim.Optimizer, list]:
    """Train the tiny model for `steps` fp16 steps; return the optimizer and, per step, whether
    the scaler lowered its scale (which it does exactly when it skips a step)."""
    model = tiny_model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    batch = [DiskDataset(count=8, augment=True)[index] for index in range(2)]
    images = torch.stack([sample["image"] for sample in batch])
    masks = torch.stack([sample["mask"] for sample in batch])
    lowered = []
    for _ in range(steps):
        with torch.autocast("cpu", dtype=torch.float16):
            logits = model(images)
        loss = nn.functional.binary_cross_entropy_with_logits(logits.float(), masks)
        optimizer.zero_grad()
        scaler.scale(loss).backward()
        scale = scaler.get_scale()
        scaler.step(optimizer)
        scaler.update()
        lowered.append(scaler.get_scale() < scale)
    return optimizer, lowered


def test_fp16_skipped_steps_are_counted_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    # A huge initial loss scale overflows fp16 gradients until the scaler has backed off.
    optimizer, lowered = fp16_steps(torch.amp.GradScaler("cpu", init_scale=2.0**30), steps=30)

    with caplog.at_level(logging.WARNING):
        skipped = count_skipped_steps(optimizer, updates_before=0, steps=30, where="run 'fp16'")

    assert 0 < skipped < 30
    assert skipped == sum(lowered)
    assert applied_updates(optimizer) == 30 - skipped
    assert f"run 'fp16': the fp16 grad scaler skipped {skipped} of 30" in caplog.text


def test_no_skipped_steps_without_the_scaler(caplog: pytest.LogCaptureFixture) -> None:
    optimizer, _ = fp16_steps(torch.amp.GradScaler("cpu", enabled=False), steps=5)
    with caplog.at_level(logging.WARNING):
        assert count_skipped_steps(optimizer, 0, 5, "run 'fp32'") == 0
    assert caplog.text == ""


def test_training_under_fp16_logs_skipped_steps_and_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Needs the training-loop change of docs/reliability.md (the `skipped_steps` column)."""
    monkeypatch.setattr(parts, "amp_settings", lambda device, mode: FP16)
    overflowing = functools.partial(torch.amp.GradScaler, init_scale=2.0**20)
    monkeypatch.setattr(torch.amp, "GradScaler", overflowing)
    disks = DiskDataset(count=8, augment=True)

    with caplog.at_level(logging.WARNING):
        result = train_segmenter(tiny_model(), disks, disks, config(), tmp_path, "fp16-run")

    skipped = result.history["skipped_steps"]
    assert skipped.iloc[0] > 0 and skipped.sum() < 3 * 4  # some skipped, training went on
    assert "run 'fp16-run'" in caplog.text and "grad scaler skipped" in caplog.text
    assert math.isfinite(result.history["train_loss"].iloc[-1])
