"""Wall time of the full study grid on this machine, extrapolated from measured throughput.

Each grid model costs, per epoch, a training step (about 3 forward passes) on every training
image and a forward pass on every validation image (the loop validates every epoch). The
measured rate, in achieved FLOP/s, of the model with the same head (averaged over the measured
backbones; over every measured model when the head was not measured) is applied to the FLOPs of
every grid model at the grid's image size. This assumes FLOP/s carries over between backbones
and image sizes, which holds only roughly: small images and small models use a GPU less well.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ssformer_repro.benchmark.train import BACKWARD_FACTOR
from ssformer_repro.models import build_model
from ssformer_repro.models.sizes import forward_gflops


@dataclass(frozen=True)
class GridDataset:
    """One dataset of the grid: its training and validation images."""

    name: str
    train_images: int
    val_images: int


@dataclass(frozen=True)
class StudyGrid:
    """Backbones x heads x datasets, trained for `epochs` at `size` x `size`."""

    backbones: tuple[str, ...]
    heads: tuple[str, ...]
    datasets: tuple[GridDataset, ...]
    epochs: int
    size: int

    def forward_passes_per_model(self) -> int:
        """Forward-pass equivalents of one model over all datasets and epochs."""
        per_epoch = sum(
            BACKWARD_FACTOR * dataset.train_images + dataset.val_images for dataset in self.datasets
        )
        return per_epoch * self.epochs


# REFERENCE.md: MiT-B0..B5 x the three heads x Kvasir-SEG (800 train / 100 val) and
# CVC-ClinicDB (490 / 61), 200 epochs at 352 x 352.
BASE_GRID = StudyGrid(
    backbones=("mit_b0", "mit_b1", "mit_b2", "mit_b3", "mit_b4", "mit_b5"),
    heads=("pld", "pld_linear", "sed"),
    datasets=(GridDataset("kvasir", 800, 100), GridDataset("clinicdb", 490, 61)),
    epochs=200,
    size=352,
)


def grid_forward_gflops(grid: StudyGrid, device: torch.device) -> dict[tuple[str, str], float]:
    """Forward GFLOPs of one image at the grid's size for every backbone x head of `grid`.

    Models are built on `device` (fast initialisation on a GPU) and moved to "meta", where the
    counting forward pass allocates and computes nothing.
    """
    gflops = {}
    for backbone in grid.backbones:
        for head in grid.heads:
            with device:
                model = build_model(backbone, head)
            gflops[(backbone, head)] = forward_gflops(model.to("meta"), grid.size)
    return gflops


def estimate_grid(
    train_rows: Sequence[Mapping[str, Any]],
    gflops: Mapping[tuple[str, str], float],
    grid: StudyGrid = BASE_GRID,
) -> list[dict[str, Any]]:
    """One estimate per measured (loop, mode): hours per grid model and in total."""
    estimates = []
    for loop, mode in dict.fromkeys((row["loop"], row["mode"]) for row in train_rows):
        rows = [row for row in train_rows if (row["loop"], row["mode"]) == (loop, mode)]
        rates = _flops_per_second_by_head(rows)
        overall = statistics.fmean(rates.values())
        models = []
        for (backbone, head), model_gflops in gflops.items():
            rate = rates.get(head, overall)
            flops = model_gflops * 1e9 * grid.forward_passes_per_model()
            models.append(
                {
                    "backbone": backbone,
                    "head": head,
                    "forward_gflops": model_gflops,
                    "rate_tflops": rate / 1e12,
                    "rate_from": "same head" if head in rates else "all measured models",
                    "pflop": flops / 1e15,
                    "hours": flops / rate / 3600,
                }
            )
        estimates.append(
            {
                "loop": loop,
                "mode": mode,
                "measured_at_size": sorted({row["size"] for row in rows}),
                "measured_models": sorted({f"{row['backbone']}-{row['head']}" for row in rows}),
                "total_pflop": sum(model["pflop"] for model in models),
                "total_hours": sum(model["hours"] for model in models),
                "models": models,
            }
        )
    return estimates


def _flops_per_second_by_head(rows: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Mean achieved training FLOP/s per head over the measured backbones."""
    by_head: dict[str, list[float]] = {}
    for row in rows:
        rate = row["images_per_second"]["mean"] * BACKWARD_FACTOR * row["forward_gflops"] * 1e9
        by_head.setdefault(row["head"], []).append(rate)
    return {head: statistics.fmean(rates) for head, rates in by_head.items()}


def grid_description(grid: StudyGrid) -> dict[str, Any]:
    """What the estimate covers, for the report."""
    return {
        "backbones": list(grid.backbones),
        "heads": list(grid.heads),
        "datasets": [dataset.__dict__ for dataset in grid.datasets],
        "epochs": grid.epochs,
        "size": grid.size,
    }
