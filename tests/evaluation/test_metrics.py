"""Tests for the report's per-image Dice / IoU and their summary."""

import math

import pandas as pd
import pytest
import torch

from ssformer_repro.evaluation.metrics import (
    EMPTY_MASK_CONVENTION,
    binarise,
    dice_iou,
    summarise_scores,
)


def _mask(height: int, width: int, rows: slice, cols: slice) -> torch.Tensor:
    mask = torch.zeros(height, width, dtype=torch.bool)
    mask[rows, cols] = True
    return mask


def test_perfect_prediction_scores_one():
    target = _mask(8, 8, slice(2, 6), slice(1, 5))
    dice, iou = dice_iou(target[None], target[None])
    assert dice.tolist() == [1.0]
    assert iou.tolist() == [1.0]


def test_empty_prediction_on_empty_mask_scores_one_as_stated():
    empty = torch.zeros(1, 8, 8, dtype=torch.bool)
    dice, iou = dice_iou(empty, empty)
    assert dice.tolist() == [1.0]
    assert iou.tolist() == [1.0]
    assert "empty" in EMPTY_MASK_CONVENTION and "= 1" in EMPTY_MASK_CONVENTION


def test_foreground_predicted_on_empty_mask_scores_zero():
    prediction = _mask(8, 8, slice(0, 1), slice(0, 1))
    dice, iou = dice_iou(prediction[None], torch.zeros(1, 8, 8, dtype=torch.bool))
    assert dice.tolist() == [0.0]
    assert iou.tolist() == [0.0]


def test_disjoint_masks_score_zero():
    prediction = _mask(8, 8, slice(0, 4), slice(None))
    target = _mask(8, 8, slice(4, 8), slice(None))
    dice, iou = dice_iou(prediction[None], target[None])
    assert dice.tolist() == [0.0]
    assert iou.tolist() == [0.0]


def test_half_overlap_matches_hand_computation():
    # |P| = |G| = 32, |P & G| = 16: Dice = 32/64, IoU = 16/48.
    prediction = _mask(8, 8, slice(None), slice(2, 6))
    target = _mask(8, 8, slice(None), slice(0, 4))
    dice, iou = dice_iou(prediction[None], target[None])
    assert dice.item() == pytest.approx(0.5)
    assert iou.item() == pytest.approx(1 / 3)


def test_batched_channel_input_scores_each_image_in_float64():
    target = torch.stack([_mask(8, 8, slice(None), slice(0, 4))] * 3)[:, None]
    prediction = torch.stack(
        [
            _mask(8, 8, slice(None), slice(0, 4)),
            _mask(8, 8, slice(None), slice(2, 6)),
            _mask(8, 8, slice(None), slice(4, 8)),
        ]
    )[:, None]
    dice, iou = dice_iou(prediction, target)
    assert dice.shape == iou.shape == (3,)
    assert dice.dtype == iou.dtype == torch.float64
    assert dice.tolist() == pytest.approx([1.0, 0.5, 0.0])
    assert iou.tolist() == pytest.approx([1.0, 1 / 3, 0.0])


def test_thresholding_is_strictly_greater_than_one_half():
    probability = torch.tensor([[[0.2, 0.5], [0.51, 0.9]]])
    target = torch.tensor([[[False, True], [True, True]]])
    assert binarise(probability).tolist() == [[[False, False], [True, True]]]
    dice, iou = dice_iou(probability > 0.5, target)
    assert dice.item() == pytest.approx(2 * 2 / (2 + 3))
    assert iou.item() == pytest.approx(2 / 3)


def test_rejects_non_boolean_and_mismatched_input():
    target = torch.zeros(2, 4, 4, dtype=torch.bool)
    with pytest.raises(TypeError, match="boolean"):
        dice_iou(torch.zeros(2, 4, 4), target)
    with pytest.raises(ValueError, match="shape"):
        dice_iou(torch.zeros(2, 4, 5, dtype=torch.bool), target)
    with pytest.raises(ValueError, match=r"\(N,H,W\)"):
        dice_iou(
            torch.zeros(2, 2, 4, 4, dtype=torch.bool), torch.zeros(2, 2, 4, 4, dtype=torch.bool)
        )


def scores(**columns) -> pd.DataFrame:
    """A per-image table of two images, the defaults overridden by `columns`."""
    defaults = {
        "id": ["a", "b"],
        "dice": [1.0, 0.5],
        "iou": [1.0, 0.25],
        "nsd": [1.0, 0.6],
        "hd95": [0.0, 0.1],
        "empty_mask": ["none", "none"],
    }
    return pd.DataFrame(defaults | columns)


def test_summarise_scores_averages_over_images():
    assert summarise_scores(scores()) == {
        "mdice": 0.75,
        "miou": 0.625,
        "mnsd": 0.8,
        "mhd95": pytest.approx(0.05),
        "hd95_undefined": 0,
        "n_images": 2,
    }


def test_an_undefined_hd95_is_counted_and_left_out_of_the_mean():
    summary = summarise_scores(
        scores(hd95=[float("nan"), 0.1], empty_mask=["prediction", "none"], nsd=[0.0, 0.6])
    )
    assert summary["mhd95"] == pytest.approx(0.1)
    assert summary["hd95_undefined"] == 1
    assert summary["mnsd"] == pytest.approx(0.3)
    only_undefined = summarise_scores(
        scores(hd95=[float("nan")] * 2, empty_mask=["ground_truth", "prediction"])
    )
    assert math.isnan(only_undefined["mhd95"]) and only_undefined["hd95_undefined"] == 2


def test_summarise_scores_rejects_empty_missing_and_nan():
    with pytest.raises(ValueError, match="empty"):
        summarise_scores(scores().iloc[:0])
    with pytest.raises(ValueError, match="iou"):
        summarise_scores(scores().drop(columns="iou"))
    with pytest.raises(ValueError, match="NaN"):
        summarise_scores(scores(dice=[1.0, float("nan")]))
    # A NaN HD95 where both masks have a boundary, or a number where one is empty, is a bug.
    with pytest.raises(ValueError, match="exactly where one mask is empty"):
        summarise_scores(scores(hd95=[float("nan"), 0.1]))
    with pytest.raises(ValueError, match="exactly where one mask is empty"):
        summarise_scores(scores(empty_mask=["none", "prediction"]))
