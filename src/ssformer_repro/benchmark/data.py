"""Data-path throughput, host side only, per DataLoader worker count: the reference's JPEG
decode + PIL augmentation, JPEG decode + our albumentations (`ManifestSegmentationDataset`),
and the decoded cache + albumentations (`CachedSegmentationDataset`, as training reads it);
each against the fastest step of our loop timed in the same run."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from torch.utils.data import Dataset

from ssformer_repro.benchmark.common import Run, batch_stream, images_per_second, number, table
from ssformer_repro.benchmark.reference import OfficialStyleDataset
from ssformer_repro.polyps.augment import build_train_transform
from ssformer_repro.polyps.settings import AugmentationSettings
from ssformer_repro.polyps.torch_datasets import (
    CachedSegmentationDataset,
    ManifestSegmentationDataset,
)

logger = logging.getLogger(__name__)

DATA_PATHS = ("official_pil_files", "manifest_files", "decoded_cache")


def training_dataset(run: Run, data_path: str) -> Dataset:
    """The run's frames through `data_path` (one of `DATA_PATHS`), at the run's size."""
    manifest, size = run.manifest, run.settings.size
    if data_path == "official_pil_files":
        return OfficialStyleDataset(manifest["image_path"], manifest["mask_path"], size)
    augment = build_train_transform(AugmentationSettings(image_size=size), seed=run.settings.seed)
    if data_path == "manifest_files":
        return ManifestSegmentationDataset(manifest, "train", augment)
    return CachedSegmentationDataset.from_cache(run.decoded_cache(), augment)


def measure(run: Run) -> dict[str, Any]:
    """Images/s of every data path at every worker count, and whether each keeps up."""
    settings, rows = run.settings, []
    for name in DATA_PATHS:
        dataset = training_dataset(run, name)
        for workers in settings.workers:
            logger.info("Data path %s with %d workers.", name, workers)
            take = batch_stream(dataset, settings, workers)
            drain = {name: lambda n, take=take: sum(1 for _ in take(n)) * settings.batch_size}
            rates = images_per_second(drain, settings)[name]  # batches are full (drop_last)
            rows.append({"data_path": name, "workers": workers, "images_per_second": rates})
    demand = fastest_step((run.results["train"] or {"rows": []})["rows"])
    for row in rows if demand else []:
        row["supply_over_demand"] = row["images_per_second"]["mean"] / demand["images_per_second"]
        row["keeps_up"] = row["supply_over_demand"] >= 1
    return {"rows": rows, "demand": demand}


def fastest_step(train_rows: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The demand a data path must meet: the fastest mean images/s of our loop in compute mode."""
    steps = [row for row in train_rows if (row["loop"], row["mode"]) == ("ours", "compute")]
    if not steps:
        return None
    fastest = max(steps, key=lambda row: row["images_per_second"]["mean"])
    step = f"{fastest['backbone']}-{fastest['head']} ({fastest['setup']})"
    return {"step": step, "images_per_second": fastest["images_per_second"]["mean"]}


def markdown(result: dict[str, Any], results: dict[str, Any]) -> str:
    """The rates per path and worker count, with supply / demand where training was timed."""
    workspace, settings, demand = results["workspace"], results["settings"], result["demand"]
    note = "No training step was timed in this run, so keeping up is not judged."
    if demand:
        note = (
            f"Demand: our step of {demand['step']} at {number(demand['images_per_second'])} "
            "images/s (compute mode). Measured alone: in training, loader workers share the CPU "
            "with the main process."
        )
    low, high = workspace["frame_size"]
    columns = "data_path, workers, images_per_second, supply_over_demand:supply / demand, keeps_up"
    return (
        f"{workspace['images']} synthetic frames of {low}-{high} px ({workspace['layout']}) "
        f"repeated to {settings['epoch_images']}-sample epochs, batches of "
        f"{settings['batch_size']} at {settings['size']} px, training augmentation included."
        f"\n\n{table(result['rows'], columns)}\n\n{note}"
    )
