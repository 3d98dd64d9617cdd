"""Strata of test images by their ground truth: polyp size (small / medium / large) and polyp
count (one / several), so that scores can be compared where the heads are said to differ.

The size thresholds are the tertiles of the training images' foreground fraction, fixed by
data_processing before any model is scored (`size_thresholds`), never from test scores.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import ndimage

from ssformer_repro.polyps.splits import CROSS_VALIDATION

SIZE_STRATA = ("small", "medium", "large")
COUNT_STRATA = ("one", "several")
NO_POLYP = "none"  # the stratum, of either kind, of an image whose mask is empty
# 8-connectivity: pixels touching at a corner belong to one polyp.
EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)
# The images whose tertiles fix the thresholds: the training split, or every image of a k-fold
# dataset (each one trains all folds but its own).
TRAINING_SPLITS = ("train", CROSS_VALIDATION)


def size_thresholds(summary: pd.DataFrame) -> dict:
    """The small/medium and medium/large foreground-fraction thresholds: the tertiles over the
    training images that have a polyp (`summary`: data_processing's per-image id, split,
    foreground_fraction)."""
    missing = {"split", "foreground_fraction"} - set(summary.columns)
    if missing:
        raise ValueError(f"size_thresholds: the dataset summary lacks column(s) {sorted(missing)}.")
    training = summary[summary["split"].isin(TRAINING_SPLITS)]
    fractions = pd.to_numeric(training["foreground_fraction"]).to_numpy(dtype=float)
    fractions = fractions[fractions > 0]
    if len(fractions) < len(SIZE_STRATA):
        raise ValueError(
            f"size_thresholds: {len(fractions)} training image(s) with a polyp; the size strata "
            f"need at least {len(SIZE_STRATA)} (splits {list(TRAINING_SPLITS)} of the summary)."
        )
    small_below, large_from = np.quantile(fractions, [1 / 3, 2 / 3])
    return {
        "small_below": float(small_below),
        "large_from": float(large_from),
        "training_images": len(fractions),
        "rule": (
            "foreground fraction < small_below: small; >= large_from: large; else medium; the "
            "thresholds are the tertiles over the training images with a polyp; an empty mask: none"
        ),
    }


def size_stratum(foreground_fraction: float, thresholds: dict) -> str:
    """small, medium or large by the mask's foreground fraction (`none` when empty)."""
    if foreground_fraction <= 0:
        return NO_POLYP
    if foreground_fraction < thresholds["small_below"]:
        return "small"
    return "large" if foreground_fraction >= thresholds["large_from"] else "medium"


def count_polyps(mask: np.ndarray) -> int:
    """The polyps of a boolean (H, W) mask: its 8-connected foreground components."""
    return int(ndimage.label(mask, structure=EIGHT_CONNECTED)[1])


def count_stratum(polyps: int) -> str:
    """one or several polyps (`none` for an empty mask)."""
    if polyps == 0:
        return NO_POLYP
    return "one" if polyps == 1 else "several"
