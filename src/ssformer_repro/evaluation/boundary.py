"""Boundary metrics of one image: normalised surface Dice (NSD) and the 95th-percentile Hausdorff
distance (HD95), from MONAI's surface distances, with Metrics Reloaded's empty-mask conventions.

Region overlap (Dice, IoU) barely moves when a boundary is a few pixels off; these two measure
the boundary itself. Both masks are scored at their original size, so distances are in the
frame's pixels; the tolerance and HD95 are also expressed relative to the frame's diagonal, so
that frames of different resolutions (ClinicDB's 384 x 288, Kvasir's up to 1920 x 1072) are
judged alike.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

BOUNDARY_COLUMNS = ("nsd", "hd95", "empty_mask")
# `empty_mask`: which of the two masks is empty.
NEITHER, PREDICTION, GROUND_TRUTH, BOTH = "none", "prediction", "ground_truth", "both"
PERCENTILE = 95

BOUNDARY_CONVENTION = (
    "NSD and HD95 per image at the mask's original size (MONAI): a boundary pixel is a mask pixel "
    "with a background 4-neighbour (the frame's edge counts as background), distances Euclidean "
    "between pixel centres. NSD: the share of both boundaries within tau = {tolerance:.2%} of the "
    "frame's diagonal of the other boundary. HD95: the larger of the two directed 95th-percentile "
    "boundary distances, in % of the frame's diagonal (times hypot(height, width): in pixels). Empty masks (Metrics "
    "Reloaded): both empty, NSD = 1 and HD95 = 0; exactly one empty, NSD = 0 and HD95 undefined "
    "(NaN, counted as hd95_undefined and left out of mHD95)."
)


def boundary_convention(tolerance: float) -> str:
    """The boundary metrics' convention, with the NSD tolerance (fraction of the diagonal)."""
    return BOUNDARY_CONVENTION.format(tolerance=tolerance)


def tolerance_pixels(height: int, width: int, tolerance: float) -> float:
    """NSD's tolerance in pixels on a `height` x `width` frame: `tolerance` times its diagonal."""
    return tolerance * math.hypot(height, width)


def boundary_scores(pred: np.ndarray, gt: np.ndarray, tolerance: float) -> dict[str, float | str]:
    """NSD at `tolerance`, HD95 and which mask is empty (`empty_mask`), for boolean (H, W) masks
    of the same size; the tolerance and HD95 are fractions of the frame's diagonal."""
    _check_masks(pred, gt, tolerance)
    diagonal = math.hypot(*gt.shape)
    pred_empty, gt_empty = not pred.any(), not gt.any()
    if pred_empty and gt_empty:
        return {"nsd": 1.0, "hd95": 0.0, "empty_mask": BOTH}
    if pred_empty or gt_empty:
        empty = PREDICTION if pred_empty else GROUND_TRUTH
        return {"nsd": 0.0, "hd95": math.nan, "empty_mask": empty}
    pred_to_gt, gt_to_pred = surface_distances(pred, gt)
    within = tolerance * diagonal
    boundary = len(pred_to_gt) + len(gt_to_pred)
    nsd = (int((pred_to_gt <= within).sum()) + int((gt_to_pred <= within).sum())) / boundary
    hd95 = max(_percentile(pred_to_gt), _percentile(gt_to_pred))
    return {"nsd": nsd, "hd95": hd95 / diagonal, "empty_mask": NEITHER}


def surface_distances(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distances (pixels, float64) from each boundary pixel of `pred` to `gt`'s boundary and
    from each of `gt`'s to `pred`'s, by MONAI's `get_edge_surface_distance` (both non-empty).

    One pass gives both of NSD's and HD95's distances: MONAI's `compute_surface_dice` and
    `compute_hausdorff_distance` would each find the edges and distance maps again (the tests
    check that the values agree with theirs).
    """
    import torch
    from monai.metrics.utils import get_edge_surface_distance

    with warnings.catch_warnings():
        # MONAI 1.6 passes a deprecated argument to its own get_mask_edges: not ours to act on.
        warnings.filterwarnings("ignore", ".*always_return_as_numpy", FutureWarning)
        _, (pred_to_gt, gt_to_pred), _ = get_edge_surface_distance(
            torch.from_numpy(pred), torch.from_numpy(gt), symmetric=True
        )
    return pred_to_gt.double().numpy(), gt_to_pred.double().numpy()


def _percentile(distances: np.ndarray) -> float:
    """The 95th percentile, linearly interpolated (as MONAI's torch.quantile)."""
    return float(np.percentile(distances, PERCENTILE))


def _check_masks(pred: np.ndarray, gt: np.ndarray, tolerance: float) -> None:
    if pred.dtype != bool or gt.dtype != bool:
        raise TypeError(
            f"boundary_scores: masks must be boolean, got {pred.dtype} and {gt.dtype}; "
            "threshold the probability first."
        )
    if pred.ndim != 2 or pred.shape != gt.shape:
        raise ValueError(
            f"boundary_scores: pred {pred.shape} and gt {gt.shape} must be the same (H, W)."
        )
    if not 0 < tolerance < 1:
        raise ValueError(
            f"boundary_scores: tolerance is a fraction of the frame's diagonal in (0, 1), got "
            f"{tolerance}."
        )
