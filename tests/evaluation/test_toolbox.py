"""Tests for the PraNet toolbox metrics against hand-computed cases."""

import numpy as np
import pytest
import torch

from ssformer_repro.evaluation.metrics import dice_iou
from ssformer_repro.evaluation.toolbox import RESULT_KEYS, ToolboxMetrics, to_grey_levels

N_THRESHOLDS = 256  # grey levels 0..255; at level 0 every pixel counts as foreground


def _left_half_mask(size: int = 8) -> np.ndarray:
    gt = np.zeros((size, size), dtype=bool)
    gt[:, : size // 2] = True
    return gt


def _results(*pairs: tuple[np.ndarray, np.ndarray]) -> dict[str, float]:
    metrics = ToolboxMetrics()
    for probability, gt in pairs:
        metrics.step(probability, gt)
    return metrics.results()


def test_results_have_stable_keys():
    gt = _left_half_mask()
    assert tuple(_results((gt.astype(np.float64), gt))) == RESULT_KEYS


def test_perfect_prediction():
    gt = _left_half_mask()
    results = _results((gt.astype(np.float32), gt))
    # Levels 1..255 give the exact mask (Dice 1); level 0 gives all 64 pixels: 2*32/(64+32).
    assert results["max_dice"] == pytest.approx(1.0)
    assert results["mean_dice"] == pytest.approx((255 * 1.0 + 2 / 3) / N_THRESHOLDS)
    assert results["mean_iou"] == pytest.approx((255 * 1.0 + 0.5) / N_THRESHOLDS)
    assert results["mae"] == 0.0
    assert results["s_measure"] == pytest.approx(1.0)
    assert results["weighted_f_measure"] == pytest.approx(1.0)
    # The MATLAB E-measure divides by (pixels - 1).
    assert results["max_e_measure"] == pytest.approx(64 / 63)


def test_inverted_prediction_is_all_wrong():
    gt = _left_half_mask()
    results = _results(((~gt).astype(np.float64), gt))
    # Only level 0 (all foreground) overlaps the mask.
    assert results["max_dice"] == pytest.approx(2 / 3)
    assert results["mean_dice"] == pytest.approx((2 / 3) / N_THRESHOLDS)
    assert results["max_iou"] == pytest.approx(0.5)
    assert results["mae"] == 1.0
    assert results["s_measure"] < 0.5


def test_half_overlap_two_level_prediction():
    gt = _left_half_mask()  # columns 0..3
    probability = np.full(gt.shape, 0.1)
    probability[:, 2:6] = 0.9  # min-max normalised to 1 on columns 2..5, 0 elsewhere
    results = _results((probability, gt))
    # Levels 1..255: |P| = |G| = 32, |P & G| = 16 -> Dice 1/2, IoU 1/3.
    # Level 0: |P| = 64 -> Dice 2*32/96 = 2/3, IoU 32/64 = 1/2.
    assert results["mean_dice"] == pytest.approx((255 * 0.5 + 2 / 3) / N_THRESHOLDS)
    assert results["max_dice"] == pytest.approx(2 / 3)
    assert results["mean_iou"] == pytest.approx((255 / 3 + 0.5) / N_THRESHOLDS)
    assert results["max_iou"] == pytest.approx(0.5)
    assert results["mae"] == pytest.approx(0.5)  # columns 0, 1, 4, 5 wrong after normalisation


def test_mae_by_hand():
    gt = np.array([[True, True], [False, False]])
    probability = np.array([[1.0, 51 / 255], [204 / 255, 0.0]])  # spans [0, 1]: no rescaling
    expected = (0.0 + (1 - 0.2) + 0.8 + 0.0) / 4
    assert _results((probability, gt))["mae"] == pytest.approx(expected)


def test_results_average_over_images():
    gt = _left_half_mask()
    half = np.zeros(gt.shape)
    half[:, 2:6] = 1.0
    both = _results((gt.astype(np.float64), gt), (half, gt))
    assert both["mae"] == pytest.approx((0.0 + 0.5) / 2)
    assert both["mean_dice"] == pytest.approx(((255 + 2 / 3) + (255 * 0.5 + 2 / 3)) / 2 / 256)


def test_mean_dice_agrees_with_report_dice_for_binary_predictions():
    rng = np.random.default_rng(0)
    gts = [rng.random((16, 20)) < 0.3 for _ in range(4)]
    predictions = [rng.random((16, 20)) < 0.4 for _ in range(4)]
    assert all(gt.any() for gt in gts)

    results = _results(*[(p.astype(np.float64), g) for p, g in zip(predictions, gts, strict=True)])

    targets = torch.from_numpy(np.stack(gts))
    dice_at_levels_1_to_255, iou_at_levels_1_to_255 = dice_iou(
        torch.from_numpy(np.stack(predictions)), targets
    )
    dice_at_level_0, iou_at_level_0 = dice_iou(torch.ones_like(targets), targets)
    expected_curve_dice = (255 * dice_at_levels_1_to_255 + dice_at_level_0) / N_THRESHOLDS
    expected_curve_iou = (255 * iou_at_levels_1_to_255 + iou_at_level_0) / N_THRESHOLDS
    assert results["mean_dice"] == pytest.approx(expected_curve_dice.mean().item())
    assert results["mean_iou"] == pytest.approx(expected_curve_iou.mean().item())
    assert results["max_dice"] == pytest.approx(
        max(dice_at_levels_1_to_255.mean().item(), dice_at_level_0.mean().item())
    )


def test_empty_mask_scores_zero_dice_in_the_toolbox():
    gt = np.zeros((8, 8), dtype=bool)
    results = _results((np.zeros((8, 8)), gt))
    assert results["max_dice"] == 0.0
    assert results["weighted_f_measure"] == 0.0
    assert results["mae"] == 0.0


def test_grey_levels_are_min_max_normalised():
    assert to_grey_levels(np.array([[0.25, 0.75], [0.5, 0.25]])).tolist() == [[0, 255], [128, 0]]
    assert to_grey_levels(np.full((2, 2), 0.6)).tolist() == [[153, 153], [153, 153]]


def test_step_rejects_bad_input():
    metrics = ToolboxMetrics()
    gt = np.zeros((4, 4), dtype=bool)
    with pytest.raises(TypeError, match="bool"):
        metrics.step(np.zeros((4, 4)), gt.astype(np.uint8))
    with pytest.raises(TypeError, match="float"):
        metrics.step(np.zeros((4, 4), dtype=np.uint8), gt)
    with pytest.raises(ValueError, match="same"):
        metrics.step(np.zeros((4, 5)), gt)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        metrics.step(np.full((4, 4), 1.5), gt)
    with pytest.raises(ValueError, match="no image"):
        metrics.results()
