"""The report's mDice / mIoU (foreground Dice and IoU per image at a fixed threshold), and the
averages of every per-image score of a test split."""

import math

import numpy as np
import pandas as pd
import torch

from ssformer_repro.evaluation.boundary import GROUND_TRUTH, PREDICTION

THRESHOLD = 0.5
SUMMARISED = ("dice", "iou", "nsd", "hd95", "empty_mask")  # the per-image columns averaged
SUMMARY_KEYS = ("mdice", "miou", "mnsd", "mhd95", "hd95_undefined")  # ...into these (and n_images)
ONE_EMPTY = (PREDICTION, GROUND_TRUTH)  # the `empty_mask` values where HD95 is undefined

EMPTY_MASK_CONVENTION = (
    "mDice / mIoU: foreground Dice 2|P∩G|/(|P|+|G|) and IoU |P∩G|/|P∪G| per image at the mask's "
    "original size, P = sigmoid probability > 0.5 (strictly greater, as in the official SSFormer "
    "test script), averaged over images. An empty prediction on an empty mask scores Dice = IoU = 1; "
    "any foreground predicted on an empty mask scores Dice = IoU = 0."
)


def binarise(probability: torch.Tensor, threshold: float = THRESHOLD) -> torch.Tensor:
    """Turn probabilities into the boolean prediction that Dice and IoU score (probability > threshold)."""
    return probability > threshold


def dice_iou(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image foreground Dice and IoU (float64, shape (N,)) of boolean (N,H,W) or (N,1,H,W) masks."""
    pred = _as_mask_batch(pred, "pred")
    target = _as_mask_batch(target, "target")
    if pred.shape != target.shape:
        raise ValueError(
            f"dice_iou: pred shape {tuple(pred.shape)} != target {tuple(target.shape)}."
        )

    # Integer counts are exact; the ratios are taken in float64.
    intersection = (pred & target).sum(dim=(1, 2)).double()
    pred_area = pred.sum(dim=(1, 2)).double()
    target_area = target.sum(dim=(1, 2)).double()
    union = pred_area + target_area - intersection

    both_empty = union == 0
    one = torch.ones_like(union)
    dice = torch.where(both_empty, one, 2 * intersection / (pred_area + target_area).clamp_min(1))
    iou = torch.where(both_empty, one, intersection / union.clamp_min(1))
    return dice, iou


def summarise_scores(per_image: pd.DataFrame) -> dict:
    """Average the per-image scores into mDice, mIoU, mNSD and mHD95, with the image count and
    the count of images whose HD95 is undefined (exactly one mask empty), which mHD95 leaves out."""
    missing = set(SUMMARISED) - set(per_image.columns)
    if missing:
        raise ValueError(f"summarise_scores: per-image table lacks column(s) {sorted(missing)}.")
    if per_image.empty:
        raise ValueError("summarise_scores: the per-image table is empty; nothing was evaluated.")
    if per_image[["dice", "iou", "nsd"]].isna().to_numpy().any():
        raise ValueError(
            "summarise_scores: NaN in the dice/iou/nsd columns; every image needs a score."
        )
    undefined = per_image["empty_mask"].isin(ONE_EMPTY).to_numpy()
    hd95 = pd.to_numeric(per_image["hd95"]).to_numpy(dtype=float)
    if not np.array_equal(np.isnan(hd95), undefined):
        raise ValueError(
            "summarise_scores: HD95 must be NaN exactly where one mask is empty (empty_mask "
            f"{list(ONE_EMPTY)}); the per-image table breaks that."
        )
    return {
        "mdice": float(per_image["dice"].mean()),
        "miou": float(per_image["iou"].mean()),
        "mnsd": float(per_image["nsd"].mean()),
        "mhd95": float(hd95[~undefined].mean()) if (~undefined).any() else math.nan,
        "hd95_undefined": int(undefined.sum()),
        "n_images": len(per_image),
    }


def _as_mask_batch(masks: torch.Tensor, name: str) -> torch.Tensor:
    """Check a boolean (N,H,W) or (N,1,H,W) batch and return it as (N,H,W)."""
    if masks.dtype != torch.bool:
        raise TypeError(
            f"dice_iou: {name} must be a boolean tensor, got {masks.dtype}; "
            f"threshold probabilities first, e.g. binarise(probability)."
        )
    if masks.ndim == 4 and masks.shape[1] == 1:
        masks = masks[:, 0]
    if masks.ndim != 3:
        raise ValueError(
            f"dice_iou: {name} must have shape (N,H,W) or (N,1,H,W), got {tuple(masks.shape)}."
        )
    if 0 in masks.shape[1:]:
        raise ValueError(f"dice_iou: {name} has zero height or width: {tuple(masks.shape)}.")
    return masks
