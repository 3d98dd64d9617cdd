"""Data-path throughput: training batches from JPEG files versus from the decoded cache.

Three training datasets at the benchmark's image size, each in a DataLoader per worker count:
- "official_pil_files": the reference loop's JPEG decode + PIL augmentation per sample;
- "manifest_files": `ManifestSegmentationDataset`, JPEG decode + the study's albumentations;
- "decoded_cache": `CachedSegmentationDataset` over the memory-mapped decoded cache (as the
  training pipeline reads it), the same albumentations.
Only the host side is timed: batches are produced and dropped, nothing goes to a device.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from ssformer_repro.benchmark.common import (
    BatchStream,
    BenchmarkSettings,
    images_per_second,
    one_epoch,
)
from ssformer_repro.benchmark.reference import OfficialStyleDataset
from ssformer_repro.benchmark.workspace import SPLIT, Workspace
from ssformer_repro.polyps.augment import build_train_transform
from ssformer_repro.polyps.torch_datasets import (
    CachedSegmentationDataset,
    ManifestSegmentationDataset,
)

logger = logging.getLogger(__name__)


def _official_pil_files(workspace: Workspace, settings: BenchmarkSettings) -> Dataset:
    manifest = workspace.manifest
    return OfficialStyleDataset(manifest["image_path"], manifest["mask_path"], settings.size)


def _manifest_files(workspace: Workspace, settings: BenchmarkSettings) -> Dataset:
    transform = build_train_transform({"image_size": settings.size}, seed=settings.seed)
    return ManifestSegmentationDataset(workspace.manifest, SPLIT, transform)


def _decoded_cache(workspace: Workspace, settings: BenchmarkSettings) -> Dataset:
    transform = build_train_transform({"image_size": settings.size}, seed=settings.seed)
    return CachedSegmentationDataset.from_cache(workspace.decoded_cache(settings.size), transform)


DATA_PATHS: dict[str, Callable[[Workspace, BenchmarkSettings], Dataset]] = {
    "official_pil_files": _official_pil_files,
    "manifest_files": _manifest_files,
    "decoded_cache": _decoded_cache,
}


def measure_data_paths(workspace: Workspace, settings: BenchmarkSettings) -> list[dict[str, Any]]:
    """Images/s of every data path with every worker count of `settings.workers`."""
    rows = []
    for name, build_dataset in DATA_PATHS.items():
        dataset = build_dataset(workspace, settings)
        for workers in settings.workers:
            logger.info("Data path %s with %d workers.", name, workers)
            loader = DataLoader(
                one_epoch(dataset, settings.epoch_images),
                batch_size=settings.batch_size,
                shuffle=True,
                num_workers=workers,
                persistent_workers=workers > 0,
                generator=torch.Generator().manual_seed(settings.seed),
                drop_last=True,
            )
            rates = images_per_second(_drain(BatchStream(loader).take), settings)
            rows.append({"data_path": name, "workers": workers, "images_per_second": rates})
    return rows


def _drain(take: Callable[[int], Iterable]) -> Callable[[int], int]:
    """A runner that pulls `n_batches` batches from `take` and returns how many images they held."""

    def run(n_batches: int) -> int:
        return sum(len(_images(batch)) for batch in take(n_batches))

    return run


def _images(batch: Any) -> torch.Tensor:
    """The images of a batch from either dataset style: a dict, or an (images, masks) pair."""
    return batch["image"] if isinstance(batch, dict) else batch[0]


def keep_up(
    data_rows: Sequence[dict[str, Any]], train_rows: Sequence[dict[str, Any]]
) -> dict[str, Any] | None:
    """How each data path compares with the fastest measured training step of our loop.

    The demand is the highest mean images/s of our loop in "compute" mode (the step alone);
    a data path keeps up when it delivers at least that many images/s.
    """
    steps = [row for row in train_rows if row["loop"] == "ours" and row["mode"] == "compute"]
    if not steps:
        return None
    fastest = max(steps, key=lambda row: row["images_per_second"]["mean"])
    demand = fastest["images_per_second"]["mean"]
    return {
        "training_step": f"{fastest['backbone']}-{fastest['head']} ({fastest['precision']})",
        "training_images_per_second": demand,
        "data_paths": [
            {
                "data_path": row["data_path"],
                "workers": row["workers"],
                "supply_over_demand": row["images_per_second"]["mean"] / demand,
                "keeps_up": row["images_per_second"]["mean"] >= demand,
            }
            for row in data_rows
        ],
    }
