"""Figures of example predictions: image, ground truth, thresholded prediction and an error overlay."""

import io

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from ssformer_repro.evaluation.metrics import THRESHOLD

# Overlay colours (RGB in [0, 1]) for each outcome of a pixel.
OUTCOME_COLOURS = {
    "true positive": (0.0, 0.8, 0.0),
    "false positive": (1.0, 0.0, 0.0),
    "false negative": (0.0, 0.4, 1.0),
}
OVERLAY_ALPHA = 0.5
FIGURE_DPI = 100  # as the catalog saves the reporting figures
COLUMN_TITLES = ("image", "ground truth", "prediction", "overlay")


def select_examples(per_image: pd.DataFrame) -> dict[str, str]:
    """Pick the ids of the best, median and worst images by Dice; ties go to the smallest id."""
    if per_image.empty:
        raise ValueError("select_examples: the per-image table is empty.")
    if per_image["dice"].isna().any():
        raise ValueError("select_examples: NaN in the dice column; every image needs a score.")
    by_dice_ascending = per_image.sort_values(["dice", "id"], ascending=[True, True])
    by_dice_descending = per_image.sort_values(["dice", "id"], ascending=[False, True])
    median_position = (len(per_image) - 1) // 2
    return {
        "best": str(by_dice_descending["id"].iloc[0]),
        "median": str(by_dice_ascending["id"].iloc[median_position]),
        "worst": str(by_dice_ascending["id"].iloc[0]),
    }


def plot_prediction_examples(
    examples: list[dict], title: str = "", threshold: float = THRESHOLD
) -> Figure:
    """One row per example: image, ground truth, prediction (> threshold) and TP/FP/FN overlay.

    Each example is a dict with "id" (str), "dice" (float), "image" ((H,W,3) uint8 or float in
    [0, 1]), "mask" ((H,W) bool) and "probability" ((H,W) float), and optionally a "label" such
    as "best".
    """
    if not examples:
        raise ValueError("plot_prediction_examples: no examples to plot.")
    figure = Figure(figsize=(3 * len(COLUMN_TITLES), 3 * len(examples)), layout="constrained")
    axes = figure.subplots(len(examples), len(COLUMN_TITLES), squeeze=False)
    for row_axes, example in zip(axes, examples, strict=True):
        image, mask, prediction = _example_arrays(example, threshold)
        panels = (image, mask, prediction, error_overlay(image, mask, prediction))
        for ax, panel in zip(row_axes, panels, strict=True):
            ax.imshow(panel, cmap="gray" if panel.ndim == 2 else None, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        label = f"{example['label']}\n" if "label" in example else ""
        row_axes[0].set_ylabel(f"{label}{example['id']}\nDice {example['dice']:.3f}")
    for ax, column_title in zip(axes[0], COLUMN_TITLES, strict=True):
        ax.set_title(column_title)
    figure.legend(
        handles=[Patch(color=colour, label=name) for name, colour in OUTCOME_COLOURS.items()],
        loc="outside lower center",
        ncols=len(OUTCOME_COLOURS),
    )
    if title:
        figure.suptitle(title)
    return figure


def figure_png(figure: Figure, dpi: int = FIGURE_DPI) -> bytes:
    """`figure` drawn as a PNG file's bytes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def error_overlay(image: np.ndarray, mask: np.ndarray, prediction: np.ndarray) -> np.ndarray:
    """Blend the TP/FP/FN colours of `OUTCOME_COLOURS` onto a float RGB image."""
    outcomes = {
        "true positive": prediction & mask,
        "false positive": prediction & ~mask,
        "false negative": ~prediction & mask,
    }
    overlay = image.copy()
    for name, pixels in outcomes.items():
        colour = np.asarray(OUTCOME_COLOURS[name])
        overlay[pixels] = (1 - OVERLAY_ALPHA) * image[pixels] + OVERLAY_ALPHA * colour
    return overlay


def _example_arrays(example: dict, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return one example's float RGB image, bool mask and bool prediction, checked for shape."""
    missing = {"id", "dice", "image", "mask", "probability"} - set(example)
    if missing:
        raise KeyError(f"plot_prediction_examples: example lacks key(s) {sorted(missing)}.")
    image = np.asarray(example["image"])
    image = image / 255.0 if image.dtype == np.uint8 else image.astype(np.float64)
    mask = np.asarray(example["mask"]).astype(bool)
    prediction = np.asarray(example["probability"]) > threshold
    if (
        image.ndim != 3
        or image.shape[2] != 3
        or not image.shape[:2] == mask.shape == prediction.shape
    ):
        raise ValueError(
            f"plot_prediction_examples: example {example['id']!r} needs image (H,W,3), mask and "
            f"probability (H,W) of one size; got {image.shape}, {mask.shape}, "
            f"{np.shape(example['probability'])}."
        )
    return image, mask, prediction
