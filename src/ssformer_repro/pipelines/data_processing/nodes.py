"""Nodes of the data_processing pipeline: one dataset from raw files to a cached, split manifest.

Heavy libraries (numpy image code, albumentations, matplotlib) are imported inside the nodes so
that registering pipelines stays fast.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from ssformer_repro.polyps.settings import (
        AugmentationSettings,
        DataProcessingSettings,
        DatasetSettings,
    )

PAIR_COLUMNS = ["id", "image_path", "mask_path", "subset"]


def _pairs_frame(pairs: list) -> pd.DataFrame:
    return pd.DataFrame([dataclasses.asdict(pair) for pair in pairs], columns=PAIR_COLUMNS)


def _pairs_list(raw_pairs: pd.DataFrame) -> list:
    from ssformer_repro.polyps.layouts import SamplePair

    return [SamplePair(**row) for row in raw_pairs[PAIR_COLUMNS].to_dict("records")]


def discover_raw_pairs(dataset: DatasetSettings) -> pd.DataFrame:
    """List the image/mask pairs of a dataset unpacked under ``root`` in its ``layout``."""
    from ssformer_repro.polyps.layouts import discover_pairs

    return _pairs_frame(discover_pairs(dataset.layout, dataset.root))


def generate_synthetic_dataset(dataset: DatasetSettings) -> pd.DataFrame:
    """Write a seeded synthetic polyp dataset in a real layout, then list it like real data."""
    from ssformer_repro.polyps.layouts import discover_pairs
    from ssformer_repro.polyps.synthetic import generate_synthetic_polyps, write_synthetic_dataset

    generator = dataset.synthetic.model_dump()
    test_sets = generator.pop("test_sets") or {}
    generator["n_images"] += sum(test_sets.values())
    write_synthetic_dataset(
        generate_synthetic_polyps(**generator),
        dataset.root,
        layout=dataset.layout,
        generator_parameters=dataset.synthetic.model_dump(exclude_unset=True),
        test_sets=test_sets,
    )
    return _pairs_frame(discover_pairs(dataset.layout, dataset.root))


def measure_images(
    raw_pairs: pd.DataFrame, data_processing: DataProcessingSettings
) -> pd.DataFrame:
    """Read every pair once: sizes and foreground fraction, failing on any unreadable pair."""
    from ssformer_repro.polyps.validation import summarise_pairs

    return summarise_pairs(
        _pairs_list(raw_pairs),
        mask_threshold=data_processing.mask_threshold,
        progress=True,
        non_binary_masks=data_processing.non_binary_masks,
    )


def split_dataset(raw_pairs: pd.DataFrame, dataset: DatasetSettings) -> pd.DataFrame:
    """Assign every image to train/val/test with the configured, deterministic strategy."""
    from ssformer_repro.polyps.splits import assign_splits, build_split_manifest

    pairs = _pairs_list(raw_pairs)
    options = dict(dataset.split)  # the strategy's keyword arguments, typed
    assignment = assign_splits(pairs, options.pop("strategy"), **options)
    return build_split_manifest(pairs, assignment)


def summarise_dataset(
    image_stats: pd.DataFrame, split_manifest: pd.DataFrame, dataset_name: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-image summary (id, split, size, foreground) and a per-split overview of one dataset."""
    from ssformer_repro.polyps.validation import dataset_overview

    summary = per_image_summary(image_stats, split_manifest)
    return summary, dataset_overview(summary, dataset_name)


def fix_size_strata(image_stats: pd.DataFrame, split_manifest: pd.DataFrame) -> dict[str, Any]:
    """The polyp-size strata's thresholds, tertiles of the training images' foreground fraction,
    fixed here where the split is known and before any model is scored."""
    from ssformer_repro.polyps.strata import size_thresholds

    return size_thresholds(per_image_summary(image_stats, split_manifest))


def per_image_summary(image_stats: pd.DataFrame, split_manifest: pd.DataFrame) -> pd.DataFrame:
    """Each image's split next to its measurements: id, split, height, width, foreground."""
    splits = split_manifest[["id", "split"]]
    summary = splits.merge(image_stats, on="id", how="left", validate="one_to_one")
    return summary[["id", "split", "height", "width", "foreground_fraction"]]


def build_decoded_cache(split_manifest: pd.DataFrame, data_processing: DataProcessingSettings):
    """Decode and resize the training and validation images once, for fast epochs (for a k-fold
    dataset every image, since each one trains or validates some fold)."""
    from ssformer_repro.polyps.cache import build_decoded_cache as build_cache
    from ssformer_repro.polyps.splits import CROSS_VALIDATION

    present = set(split_manifest["split"])
    return build_cache(
        split_manifest,
        size=data_processing.cache_size,
        splits=tuple(split for split in ("train", "val", CROSS_VALIDATION) if split in present),
        mask_threshold=data_processing.mask_threshold,
        progress=True,
    )


def plot_augmentation_preview(
    decoded_cache, augmentation: AugmentationSettings, data_processing: DataProcessingSettings
):
    """A grid of augmented training samples with their masks, to check alignment by eye."""
    from ssformer_repro.polyps.augment import build_train_transform
    from ssformer_repro.polyps.preview import plot_augmented_samples
    from ssformer_repro.polyps.splits import CROSS_VALIDATION
    from ssformer_repro.polyps.torch_datasets import CachedSegmentationDataset

    preview = data_processing.preview
    transform = build_train_transform(augmentation, seed=preview.seed)
    # A k-fold dataset has no fixed train split: every image trains some fold.
    split = CROSS_VALIDATION if CROSS_VALIDATION in decoded_cache.splits else "train"
    dataset = CachedSegmentationDataset.from_cache(decoded_cache, transform, split=split)
    return plot_augmented_samples(
        dataset,
        n_samples=preview.n_samples,
        n_augmentations=preview.n_augmentations,
        seed=preview.seed,
    )
