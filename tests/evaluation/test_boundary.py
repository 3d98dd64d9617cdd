"""Boundary metrics on hand-made masks whose NSD and HD95 can be worked out on paper.

A boundary pixel is a mask pixel with a background 4-neighbour (or on the frame's edge);
distances are Euclidean between pixel centres. In the comments, "GT" is the ground truth.
"""

import math

import numpy as np
import pytest
import torch

from ssformer_repro.evaluation.boundary import (
    BOUNDARY_COLUMNS,
    boundary_convention,
    boundary_scores,
    tolerance_pixels,
)


def square(shape=(20, 20), top=5, left=5, side=10) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[top : top + side, left : left + side] = True
    return mask


def fraction(pixels: float, shape=(20, 20)) -> float:
    """A tolerance of `pixels` as the fraction of the frame's diagonal that boundary_scores takes."""
    return pixels / math.hypot(*shape)


def test_a_square_shifted_by_two_pixels() -> None:
    # GT rows/cols 5..14, prediction cols 7..16: 36 boundary pixels each. From GT to the
    # prediction's boundary: its left column (10 px) at 2; its right column at 0 (2 corners),
    # 1 (rows 6, 13) and 2 (rows 7..12); its top and bottom rows inside (16 px) at 0 or 1
    # (col 6). So 20 of 36 are within 1.5 px, by symmetry 20 of the prediction's too: NSD 40/72.
    gt, pred = square(), square(left=7)
    scores = boundary_scores(pred, gt, fraction(1.5))
    assert scores["nsd"] == pytest.approx(40 / 72)
    # 16 of 36 distances are 2 on each side, the largest: the 95th percentile is 2 px.
    assert scores["hd95"] == pytest.approx(2 / math.hypot(20, 20))
    assert scores["empty_mask"] == "none"
    assert set(scores) == set(BOUNDARY_COLUMNS)


@pytest.mark.parametrize("shift", [1, 2, 3])
def test_a_shift_of_k_pixels_is_an_hd95_of_k_and_within_a_tolerance_of_k(shift: int) -> None:
    gt, pred = square(), square(left=5 + shift)
    within = boundary_scores(pred, gt, fraction(shift + 0.5))
    assert within["nsd"] == 1.0
    assert within["hd95"] == pytest.approx(shift / math.hypot(20, 20))
    # Below the shift, only the distances under it count: fewer than all.
    assert boundary_scores(pred, gt, fraction(shift - 0.5))["nsd"] < 1.0


def test_a_shift_of_one_pixel_below_the_tolerance_counts_only_touching_pixels() -> None:
    # GT's left column (10 px) and its right column's rows 6..13 (8 px) are 1 px off; the rest
    # (2 corners and 16 pixels of the top and bottom rows) lie on the prediction's boundary.
    gt, pred = square(), square(left=6)
    assert boundary_scores(pred, gt, fraction(0.5))["nsd"] == pytest.approx(18 / 36)


def test_the_metrics_judge_a_frame_at_twice_the_resolution_alike() -> None:
    gt, pred = square(), square(left=7)
    double = np.ones((2, 2), dtype=bool)
    large = boundary_scores(np.kron(pred, double), np.kron(gt, double), fraction(1.5))
    # HD95 is 4 px on a diagonal twice as long: the same fraction of it.
    assert large["hd95"] == pytest.approx(boundary_scores(pred, gt, fraction(1.5))["hd95"])


def test_empty_masks_follow_metrics_reloaded() -> None:
    empty, gt = np.zeros((20, 20), dtype=bool), square()
    both = boundary_scores(empty, empty.copy(), 0.01)
    assert (both["nsd"], both["hd95"], both["empty_mask"]) == (1.0, 0.0, "both")
    missed = boundary_scores(empty, gt, 0.01)
    assert missed["nsd"] == 0.0 and math.isnan(missed["hd95"])
    assert missed["empty_mask"] == "prediction"
    false_alarm = boundary_scores(gt, empty, 0.01)
    assert false_alarm["nsd"] == 0.0 and math.isnan(false_alarm["hd95"])
    assert false_alarm["empty_mask"] == "ground_truth"


def test_a_missed_second_polyp() -> None:
    # GT: two 4 x 4 squares, A at cols 2..5 and B at cols 20..23 (rows 2..5); the prediction is
    # A alone. A's 12 boundary pixels match on both sides; B's are 15 (col 20), 16, 17 (cols 21,
    # 22, top and bottom) and 18 (col 23) px from A's right column. Within 1.5 px: 12 of GT's 24
    # and all 12 of the prediction's: NSD 24/36. GT's sorted distances end in four 18s: HD95 18.
    shape = (8, 30)
    polyp_a = square(shape, top=2, left=2, side=4)
    gt = polyp_a | square(shape, top=2, left=20, side=4)
    scores = boundary_scores(polyp_a, gt, fraction(1.5, shape))
    assert scores["nsd"] == pytest.approx(24 / 36)
    assert scores["hd95"] * math.hypot(*shape) == pytest.approx(18)


@pytest.mark.filterwarnings("ignore:.*always_return_as_numpy:FutureWarning")
def test_values_agree_with_monais_own_metric_functions() -> None:
    # One pass of MONAI's surface distances for both metrics: the same values as its
    # compute_surface_dice and compute_hausdorff_distance, which each compute them again.
    from monai.metrics import compute_hausdorff_distance, compute_surface_dice

    rng = np.random.default_rng(0)
    rows, cols = np.mgrid[:60, :80]
    for _ in range(3):
        cy, cx, ry, rx = rng.uniform(15, 45), rng.uniform(20, 60), *rng.uniform(5, 15, 2)
        gt = ((rows - cy) / ry) ** 2 + ((cols - cx) / rx) ** 2 <= 1
        pred = ((rows - cy - rng.uniform(-4, 4)) / (ry + 2)) ** 2 + ((cols - cx) / rx) ** 2 <= 1
        tolerance = 0.02
        scores = boundary_scores(pred, gt, tolerance)
        pair = torch.from_numpy(pred)[None, None], torch.from_numpy(gt)[None, None]
        tau = tolerance_pixels(60, 80, tolerance)
        nsd = compute_surface_dice(*pair, [tau], include_background=True).item()
        hd95 = compute_hausdorff_distance(*pair, include_background=True, percentile=95).item()
        assert scores["nsd"] == pytest.approx(nsd, abs=1e-6)
        assert scores["hd95"] * math.hypot(60, 80) == pytest.approx(hd95, rel=1e-5)


def test_bad_input_is_a_clear_error() -> None:
    gt = square()
    with pytest.raises(TypeError, match="boolean"):
        boundary_scores(gt.astype(np.uint8), gt, 0.01)
    with pytest.raises(ValueError, match="same"):
        boundary_scores(gt[:10], gt, 0.01)
    with pytest.raises(ValueError, match="diagonal"):
        boundary_scores(gt, gt, 2.0)


def test_the_convention_states_the_tolerance() -> None:
    assert "0.50% of the frame's diagonal" in boundary_convention(0.005)
    assert tolerance_pixels(1072, 1920, 0.005) == pytest.approx(10.99, abs=0.01)
