"""Check every image/mask pair of a dataset once and summarise sizes and polyp coverage."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pandas as pd
from tqdm.auto import tqdm

from ssformer_repro.data.io import ImageReadError, read_mask, read_rgb
from ssformer_repro.data.layouts import SamplePair

logger = logging.getLogger(__name__)

SUMMARY_COLUMNS = ["id", "height", "width", "foreground_fraction"]
SPLIT_ORDER = {"train": 0, "val": 1, "test": 2}


class DatasetValidationError(ValueError):
    """Some files of the dataset are unreadable or inconsistent; the message lists each one."""


def summarise_pairs(
    pairs: Sequence[SamplePair], mask_threshold: int = 127, progress: bool = False
) -> pd.DataFrame:
    """Decode every pair and return id, height, width and mask foreground fraction per pair.

    All problems (unreadable files, image/mask size mismatches) are collected and raised
    together; masks without foreground only trigger a warning.
    """
    rows = []
    problems = []
    for pair in tqdm(pairs, desc="Validating pairs", disable=not progress):
        try:
            image = read_rgb(pair.image_path)
            mask = read_mask(pair.mask_path, threshold=mask_threshold)
        except ImageReadError as error:
            problems.append(f"{pair.id}: {error}")
            continue
        if image.shape[:2] != mask.shape:
            problems.append(
                f"{pair.id}: image {pair.image_path} is {_size(image.shape)} but mask "
                f"{pair.mask_path} is {_size(mask.shape)} (height x width)"
            )
            continue
        rows.append((pair.id, image.shape[0], image.shape[1], float(mask.mean())))
    if problems:
        raise DatasetValidationError(
            f"{len(problems)} of {len(pairs)} image/mask pairs are invalid:\n  "
            + "\n  ".join(problems)
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
