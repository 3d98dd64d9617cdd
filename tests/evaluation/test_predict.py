"""Tests for running a model over an evaluation set and scoring it in one pass."""

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ssformer_repro.evaluation.boundary import BOUNDARY_COLUMNS
from ssformer_repro.evaluation.predict import (
    PER_IMAGE_COLUMNS,
    flip_averaged_probabilities,
    predict_probabilities,
)
from ssformer_repro.evaluation.predict import evaluate_predictions as evaluate_with
from ssformer_repro.evaluation.toolbox import RESULT_KEYS, ToolboxMetrics

INPUT_SIZE = 16
MASK_SIZES = {"wide": (30, 40), "tall": (50, 20)}
STRATA = {"small_below": 0.1, "large_from": 0.4}  # polyp-size thresholds, as data_processing fixes


def evaluate_predictions(predictions, **options):
    """evaluate_predictions with these size strata and the evaluation's NSD tolerance."""
    return evaluate_with(predictions, size_strata=STRATA, nsd_tolerance=0.005, **options)


class ToyEvaluationSet(Dataset):
    """Two images under the evaluation dataset's contract, masks at different original sizes."""

    def __init__(self, mask_dtype: type = bool) -> None:
        generator = torch.Generator().manual_seed(0)
        self.items = []
        for image_id, (height, width) in MASK_SIZES.items():
            mask = np.zeros((height, width), dtype=mask_dtype)
            mask[height // 4 : height // 2, width // 4 :] = 1
            image = torch.randn(3, INPUT_SIZE, INPUT_SIZE, generator=generator)
            self.items.append(
                {"image": image, "mask": mask, "id": image_id, "size": (height, width)}
            )

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        return self.items[index]


def collate_evaluation(batch: list[dict]) -> dict:
    return {
        "image": torch.stack([item["image"] for item in batch]),
        "mask": [item["mask"] for item in batch],
        "id": [item["id"] for item in batch],
        "size": [item["size"] for item in batch],
    }


def _tiny_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Conv2d(3, 1, kernel_size=1)


def _loader(dataset: Dataset) -> DataLoader:
    return DataLoader(dataset, batch_size=2, collate_fn=collate_evaluation)


def test_probabilities_come_back_at_each_masks_original_size():
    model = _tiny_model()
    dataset = ToyEvaluationSet()
    predictions = list(predict_probabilities(model, _loader(dataset), "cpu"))

    assert [image_id for image_id, _, _ in predictions] == list(MASK_SIZES)
    for (image_id, probability, gt), item in zip(predictions, dataset.items, strict=True):
        assert probability.shape == gt.shape == MASK_SIZES[image_id]
        assert probability.dtype == np.float32
        assert gt.dtype == bool
        np.testing.assert_array_equal(gt, item["mask"])
        with torch.no_grad():
            logits = model(item["image"][None])
        expected = F.interpolate(
            torch.sigmoid(logits), size=gt.shape, mode="bilinear", align_corners=False
        )[0, 0]
        np.testing.assert_allclose(probability, expected.numpy(), rtol=1e-6, atol=1e-6)


def test_bf16_autocast_runs_on_the_cpu_close_to_fp32():
    model = _tiny_model()
    loader = _loader(ToyEvaluationSet())
    plain = list(predict_probabilities(model, loader, "cpu"))
    with_amp = list(predict_probabilities(model, loader, "cpu", amp_dtype=torch.bfloat16))
    for (_, expected, _), (_, probability, _) in zip(plain, with_amp, strict=True):
        assert probability.dtype == np.float32
        assert not np.array_equal(probability, expected)  # bf16 did run ...
        np.testing.assert_allclose(probability, expected, atol=2e-2)  # ... to bf16 precision


def test_integer_masks_are_accepted_and_raw_grey_masks_rejected():
    model = _tiny_model()
    predictions = list(predict_probabilities(model, _loader(ToyEvaluationSet(np.uint8)), "cpu"))
    assert all(gt.dtype == bool and gt.any() for _, _, gt in predictions)

    grey = ToyEvaluationSet(np.uint8)
    grey.items[0]["mask"] = grey.items[0]["mask"] * 255
    with pytest.raises(ValueError, match="'wide'.*binarise"):
        list(predict_probabilities(model, _loader(grey), "cpu"))


def test_size_that_disagrees_with_mask_is_an_error():
    dataset = ToyEvaluationSet()
    dataset.items[1]["size"] = (20, 50)
    with pytest.raises(ValueError, match="'tall'"):
        list(predict_probabilities(_tiny_model(), _loader(dataset), "cpu"))


def test_evaluate_predictions_builds_per_image_table_and_toolbox_metrics():
    gt = np.zeros((8, 8), dtype=bool)
    gt[:, :4] = True
    half = np.zeros((8, 8), dtype=np.float32)
    half[:, 2:6] = 0.9
    predictions = iter([("perfect", gt.astype(np.float32), gt), ("half", half, gt)])

    per_image, toolbox = evaluate_predictions(predictions)

    assert isinstance(per_image, pd.DataFrame)
    assert tuple(per_image.columns) == PER_IMAGE_COLUMNS
    assert per_image["id"].tolist() == ["perfect", "half"]
    assert per_image["dice"].tolist() == pytest.approx([1.0, 0.5])
    assert per_image["iou"].tolist() == pytest.approx([1.0, 1 / 3])
    assert per_image["height"].tolist() == [8, 8]
    assert per_image["width"].tolist() == [8, 8]
    assert per_image["foreground_fraction"].tolist() == [0.5, 0.5]
    assert per_image["test_set"].tolist() == ["test", "test"]
    # "half" predicts cols 2..5 of a mask of cols 0..3 (8 x 8): of each side's 20 boundary pixels
    # (frame edges included) 4 touch the other boundary, 8 are 1 px and 8 are 2 px off. The
    # tolerance, 0.5 % of the diagonal, is below 1 px: NSD 8/40; HD95 2 px.
    assert per_image["nsd"].tolist() == pytest.approx([1.0, 0.2])
    assert per_image["hd95"].tolist() == pytest.approx([0.0, 2 / np.hypot(8, 8)])
    assert per_image["empty_mask"].tolist() == ["none", "none"]
    assert per_image["size_stratum"].tolist() == ["large", "large"]
    assert per_image["n_polyps"].tolist() == [1, 1]
    assert per_image["count_stratum"].tolist() == ["one", "one"]
    assert tuple(toolbox) == ("pooled",)
    assert tuple(toolbox["pooled"]) == RESULT_KEYS
    assert toolbox["pooled"]["mae"] == pytest.approx((0.0 + 0.5) / 2)


def test_each_test_set_is_scored_on_its_own_and_pooled():
    gt = np.zeros((8, 8), dtype=bool)
    gt[:, :4] = True
    half = np.zeros((8, 8), dtype=np.float32)
    half[:, 2:6] = 0.9
    predictions = [("a/1", gt.astype(np.float32), gt), ("b/1", half, gt), ("b/2", half, gt)]
    sets = {"a/1": "Kvasir", "b/1": "ETIS", "b/2": "ETIS"}

    per_image, toolbox = evaluate_predictions(predictions, test_sets=sets)

    assert per_image["test_set"].tolist() == ["Kvasir", "ETIS", "ETIS"]
    assert set(toolbox) == {"pooled", "Kvasir", "ETIS"}
    assert toolbox["Kvasir"]["mae"] == pytest.approx(0.0)
    assert toolbox["ETIS"]["mae"] == pytest.approx(0.5)
    assert toolbox["pooled"]["mae"] == pytest.approx(1 / 3)


def test_one_test_set_is_scored_once_as_the_pooled_set(monkeypatch: pytest.MonkeyPatch):
    gt = np.zeros((8, 8), dtype=bool)
    gt[:, :4] = True
    half = np.zeros((8, 8), dtype=np.float32)
    half[:, 2:6] = 0.9
    predictions = [("a", gt.astype(np.float32), gt), ("b", half, gt)]
    _, expected = evaluate_predictions(predictions)
    steps = []
    original = ToolboxMetrics.step
    monkeypatch.setattr(
        ToolboxMetrics, "step", lambda self, *args: steps.append(1) or original(self, *args)
    )

    _, toolbox = evaluate_predictions(predictions, test_sets={"a": "Kvasir", "b": "Kvasir"})

    assert len(steps) == len(predictions)  # not once more for the set
    assert toolbox == {"pooled": expected["pooled"], "Kvasir": expected["pooled"]}
    with pytest.raises(ValueError, match="'b' is in no test set"):
        evaluate_predictions(predictions, test_sets={"a": "Kvasir"})


def test_evaluate_predictions_threshold_is_strict():
    gt = np.ones((2, 2), dtype=bool)
    probability = np.array([[0.5, 0.5], [0.7, 0.7]], dtype=np.float32)
    per_image, _ = evaluate_predictions([("a", probability, gt)], threshold=0.5)
    assert per_image["dice"].item() == pytest.approx(2 * 2 / (2 + 4))


def test_evaluate_predictions_end_to_end_with_progress_bar():
    loader = _loader(ToyEvaluationSet())
    per_image, toolbox = evaluate_predictions(
        predict_probabilities(_tiny_model(), loader, "cpu"), progress=True
    )
    assert per_image["id"].tolist() == list(MASK_SIZES)
    assert per_image[["height", "width"]].to_numpy().tolist() == [
        list(s) for s in MASK_SIZES.values()
    ]
    assert per_image["dice"].between(0, 1).all()
    assert 0 <= toolbox["pooled"]["mean_dice"] <= toolbox["pooled"]["max_dice"] <= 1


def test_each_image_gets_its_strata_and_an_undefined_hd95_is_nan():
    gt = np.zeros((10, 10), dtype=bool)
    gt[1:3, 1:3] = True  # 4 % of the frame: small
    gt[6:9, 6:9] = True  # with it, 13 %: medium, and two polyps
    empty = np.zeros((10, 10), dtype=bool)
    zero = np.zeros((10, 10), dtype=np.float32)
    predictions = [("missed", zero, gt), ("clean", zero, empty), ("false alarm", gt * 0.9, empty)]
    per_image, _ = evaluate_predictions(predictions)
    assert per_image["size_stratum"].tolist() == ["medium", "none", "none"]
    assert per_image["n_polyps"].tolist() == [2, 0, 0]
    assert per_image["count_stratum"].tolist() == ["several", "none", "none"]
    assert per_image["empty_mask"].tolist() == ["prediction", "both", "ground_truth"]
    assert per_image["nsd"].tolist() == [0.0, 1.0, 0.0]
    assert per_image["hd95"].isna().tolist() == [True, False, True]


def test_without_a_tolerance_the_boundary_metrics_are_left_out():
    gt = np.ones((4, 4), dtype=bool)
    per_image, _ = evaluate_with(
        [("a", gt.astype(np.float32), gt)], size_strata=STRATA, nsd_tolerance=None
    )
    assert not set(BOUNDARY_COLUMNS) & set(per_image.columns)
    assert per_image["size_stratum"].item() == "large"


def test_evaluate_predictions_rejects_empty_and_duplicate_ids():
    with pytest.raises(ValueError, match="no predictions"):
        evaluate_predictions(iter([]))
    gt = np.ones((2, 2), dtype=bool)
    probability = np.ones((2, 2), dtype=np.float32)
    with pytest.raises(ValueError, match="more than once"):
        evaluate_predictions([("a", probability, gt), ("a", probability, gt)])


class LeftEdge(nn.Module):
    """Logits that depend on where a pixel is (high on the left): not flip-equivariant."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        width = images.shape[-1]
        ramp = torch.linspace(2.0, -2.0, width).expand(images.shape[0], 1, images.shape[-2], -1)
        return ramp + images[:, :1]


def test_tta_averages_the_flipped_copies_flipped_back() -> None:
    images = torch.randn(2, 3, 8, 12, generator=torch.Generator().manual_seed(1))
    model = LeftEdge()
    plain = flip_averaged_probabilities(model, images, tta="none")
    assert torch.equal(plain, torch.sigmoid(model(images)))
    hflip = flip_averaged_probabilities(model, images, tta="hflip")
    by_hand = (torch.sigmoid(model(images)) + torch.sigmoid(model(images.flip(3))).flip(3)) / 2
    assert torch.allclose(hflip, by_hand)
    flips = flip_averaged_probabilities(model, images, tta="flips")
    copies = [(), (3,), (2,), (2, 3)]
    expected = (
        sum(
            torch.sigmoid(model(images.flip(d) if d else images)).flip(d)
            if d
            else torch.sigmoid(model(images))
            for d in copies
        )
        / 4
    )
    assert torch.allclose(flips, expected)
    assert not torch.allclose(flips, plain)  # the ramp is not flip-equivariant
    # A flip-equivariant model (a 1x1 conv) gives the same probabilities with or without TTA.
    conv = _tiny_model()
    assert torch.allclose(
        flip_averaged_probabilities(conv, images, tta="flips"),
        flip_averaged_probabilities(conv, images),
        atol=1e-6,
    )
    with pytest.raises(ValueError, match="tta must be one of"):
        flip_averaged_probabilities(conv, images, tta="rotate")


def test_predictions_with_tta_come_back_at_each_masks_size() -> None:
    predictions = list(
        predict_probabilities(LeftEdge(), _loader(ToyEvaluationSet()), "cpu", tta="flips")
    )
    assert {image_id: p.shape for image_id, p, _ in predictions} == MASK_SIZES
