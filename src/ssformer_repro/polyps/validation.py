"""Check every image/mask pair of a dataset once and summarise sizes and polyp coverage."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import get_args

import cv2
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ssformer_repro.polyps.io import ImageReadError, read_gray, read_rgb
from ssformer_repro.polyps.layouts import SamplePair
from ssformer_repro.polyps.settings import NonBinaryMaskPolicy

logger = logging.getLogger(__name__)

SUMMARY_COLUMNS = ["id", "height", "width", "foreground_fraction"]
SPLIT_ORDER = {"train": 0, "val": 1, "test": 2}
NON_BINARY_MASK_POLICIES = get_args(NonBinaryMaskPolicy)
# JPEG compression leaves grey values along a mask's edges, inside the 8x8 blocks the edge
# crosses (at most 8 * sqrt(2) px from it); a mid-grey pixel farther away belongs to a grey
# region: soft labels, several classes, a broken export.
MID_GREY = (32, 223)
EDGE_NOISE_PX = 12


class DatasetValidationError(ValueError):
    """Some files of the dataset are unreadable or inconsistent; the message lists each one."""


def summarise_pairs(
    pairs: Sequence[SamplePair],
    mask_threshold: int = 127,
    progress: bool = False,
    non_binary_masks: NonBinaryMaskPolicy = "binarise",
) -> pd.DataFrame:
    """Decode every pair and return id, height, width and mask foreground fraction per pair.

    All problems (unreadable files, image/mask size mismatches) are collected and raised
    together; masks without foreground only trigger a warning. Masks with more than two grey
    values are binarised at `mask_threshold`, or are problems too when `non_binary_masks` is
    "error": those with grey values along their edges only (JPEG noise) are counted in a log
    line, those with mid-grey regions are named in a warning.
    """
    if non_binary_masks not in NON_BINARY_MASK_POLICIES:
        raise ValueError(
            f"non_binary_masks is {non_binary_masks!r}; valid: {list(NON_BINARY_MASK_POLICIES)}."
        )
    rows = []
    problems = []
    edge_noise_ids, grey_region_ids = [], []
    for pair in tqdm(pairs, desc="Validating pairs", disable=not progress):
        try:
            image = read_rgb(pair.image_path)
            grey = read_gray(pair.mask_path)
        except ImageReadError as error:
            problems.append(f"{pair.id}: {error}")
            continue
        if image.shape[:2] != grey.shape:
            problems.append(
                f"{pair.id}: image {pair.image_path} is {_size(image.shape)} but mask "
                f"{pair.mask_path} is {_size(grey.shape)} (height x width)"
            )
            continue
        grey_levels = np.count_nonzero(np.bincount(grey.ravel(), minlength=256))
        if grey_levels > 2:
            grey_region = mid_grey_away_from_edges(grey, mask_threshold)
            if grey_region is None:
                edge_noise_ids.append(pair.id)
            else:
                grey_region_ids.append(f"{pair.id} ({grey_region})")
            if non_binary_masks == "error":
                region = f" (mid-grey regions: {grey_region})" if grey_region else ""
                problems.append(
                    f"{pair.id}: mask {pair.mask_path} has {grey_levels} grey values, not two"
                    f"{region}; set data_processing.non_binary_masks to 'binarise' to threshold "
                    f"it at grey value > {mask_threshold}"
                )
                continue
        mask = grey > mask_threshold
        rows.append((pair.id, image.shape[0], image.shape[1], float(mask.mean())))
    if problems:
        raise DatasetValidationError(
            f"{len(problems)} of {len(pairs)} image/mask pairs are invalid:\n  "
            + "\n  ".join(problems)
        )
    if edge_noise_ids:
        logger.info(
            "%d of %d masks have more than two grey values along their edges only (JPEG "
            "compression noise); they were binarised at grey value > %d.",
            len(edge_noise_ids),
            len(pairs),
            mask_threshold,
        )
    if grey_region_ids:
        logger.warning(
            "%d of %d masks have mid-grey regions, grey values %d..%d farther than %d px from "
            "their edges (soft labels, several classes or a broken export?); they were binarised "
            "at grey value > %d, check them: %s",
            len(grey_region_ids),
            len(pairs),
            *MID_GREY,
            EDGE_NOISE_PX,
            mask_threshold,
            ", ".join(grey_region_ids[:20]) + (" ..." if len(grey_region_ids) > 20 else ""),
        )
    summary = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    empty_ids = summary.loc[summary["foreground_fraction"] == 0, "id"].tolist()
    if empty_ids:
        logger.warning(
            "%d masks have no foreground above grey value %d (kept, fraction 0): %s. "
            "If your masks store labels 0/1 instead of 0/255, lower mask_threshold to 0.",
            len(empty_ids),
            mask_threshold,
            ", ".join(empty_ids),
        )
    return summary


def mid_grey_away_from_edges(grey: np.ndarray, threshold: int) -> str | None:
    """How a mask's mid-grey pixels beyond JPEG's reach from its edges look ("1,234 px of
    60..200"), None if there are none: its other grey values are compression noise."""
    mid_grey = (grey >= MID_GREY[0]) & (grey <= MID_GREY[1])
    if not mid_grey.any():
        return None
    binary = (grey > threshold).astype(np.uint8)
    # Each pixel's distance to the nearest pixel on the other side of the threshold.
    distance = np.maximum(
        cv2.distanceTransform(binary, cv2.DIST_L2, cv2.DIST_MASK_PRECISE),
        cv2.distanceTransform(1 - binary, cv2.DIST_L2, cv2.DIST_MASK_PRECISE),
    )
    values = grey[mid_grey & (distance > EDGE_NOISE_PX)]
    if values.size == 0:
        return None
    return f"{values.size:,} px of {values.min()}..{values.max()}"


def dataset_overview(summary: pd.DataFrame, name: str) -> pd.DataFrame:
    """One row per split (plus "all"), or one row for the whole dataset, describing sizes and masks."""
    groups = [("all", summary)]
    if "split" in summary.columns:
        splits = sorted(
            summary["split"].unique(), key=lambda split: (SPLIT_ORDER.get(split, 3), split)
        )
        groups = [(split, summary[summary["split"] == split]) for split in splits] + groups
    return pd.DataFrame([_describe_group(name, split, rows) for split, rows in groups])


def _describe_group(name: str, split: str, rows: pd.DataFrame) -> dict[str, object]:
    """Count, size range and mask coverage of one group of summary rows."""
    return {
        "dataset": name,
        "split": split,
        "count": len(rows),
        "height_min": rows["height"].min(),
        "height_median": rows["height"].median(),
        "height_max": rows["height"].max(),
        "width_min": rows["width"].min(),
        "width_median": rows["width"].median(),
        "width_max": rows["width"].max(),
        "mean_foreground_fraction": rows["foreground_fraction"].mean(),
        "empty_masks": int((rows["foreground_fraction"] == 0).sum()),
    }


def _size(shape: tuple[int, ...]) -> str:
    return f"{shape[0]}x{shape[1]}"
