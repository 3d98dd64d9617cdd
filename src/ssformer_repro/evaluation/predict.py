"""Run a model over an evaluation set and score its predictions at each mask's original size.

The loader yields batches from `collate_evaluation`: {"image": (B,3,S,S) float tensor,
"mask": list of (H,W) binary masks, "id": list of str, "size": list of (H,W)}.
"""

import contextlib
import logging
from collections.abc import Iterable, Iterator, Mapping

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ssformer_repro.evaluation.boundary import BOUNDARY_COLUMNS, boundary_scores
from ssformer_repro.evaluation.metrics import THRESHOLD, binarise, dice_iou
from ssformer_repro.evaluation.toolbox import ToolboxMetrics
from ssformer_repro.polyps.strata import count_polyps, count_stratum, size_stratum

logger = logging.getLogger(__name__)

# The scores of a prediction (each also `<score>_without_tta` when scored with TTA too)...
SCORE_COLUMNS = ("dice", "iou", *BOUNDARY_COLUMNS)
# ...and what the ground truth alone says of an image (its strata).
STRATA_COLUMNS = ("size_stratum", "n_polyps", "count_stratum")
PER_IMAGE_COLUMNS = (
    "id",
    "test_set",
    *SCORE_COLUMNS,
    "height",
    "width",
    "foreground_fraction",
    *STRATA_COLUMNS,
)
POOLED = "pooled"  # the key of the toolbox metrics over every test image
DEFAULT_TEST_SET = "test"


# The flipped copies each test-time augmentation averages (dims of a (B, C, H, W) batch).
TTA_FLIPS: dict[str, tuple[tuple[int, ...], ...]] = {
    "none": ((),),
    "hflip": ((), (3,)),
    "flips": ((), (3,), (2,), (2, 3)),
}


def flip_averaged_probabilities(
    model: nn.Module, images: torch.Tensor, amp_dtype: torch.dtype | None = None, tta: str = "none"
) -> torch.Tensor:
    """(B,1,h,w) float32 probabilities of `images`, averaged over `tta`'s flipped copies.

    `amp_dtype` (e.g. torch.bfloat16) runs the forward passes in autocast on the images' device.
    """
    if tta not in TTA_FLIPS:
        raise ValueError(f"tta must be one of {sorted(TTA_FLIPS)}, got {tta!r}.")
    autocast = (
        torch.autocast(images.device.type, dtype=amp_dtype)
        if amp_dtype is not None
        else contextlib.nullcontext()
    )
    total = None
    for dims in TTA_FLIPS[tta]:
        with torch.inference_mode(), autocast:
            logits = model(images.flip(dims) if dims else images)
        if logits.ndim != 4 or logits.shape[1] != 1:
            raise ValueError(f"the model must return (B,1,H,W) logits, got {tuple(logits.shape)}.")
        probabilities = torch.sigmoid(logits.float())
        probabilities = probabilities.flip(dims) if dims else probabilities
        total = probabilities if total is None else total + probabilities
    return total / len(TTA_FLIPS[tta])


def batch_probabilities(
    model: nn.Module,
    loader: Iterable[dict],
    device: torch.device | str,
    amp_dtype: torch.dtype | None = None,
    tta: str = "none",
) -> Iterator[tuple[dict, list[np.ndarray]]]:
    """Each batch of `loader` with the float32 probability of each of its images, resized
    (bilinear) to that image's `size`. A batch whose "image" is None (every frame skipped)
    comes with no probabilities. Puts the model in eval mode."""
    device = torch.device(device)
    model.eval()
    for batch in loader:
        if batch["image"] is None:
            yield batch, []
            continue
        images = batch["image"].to(device, non_blocking=True)
        probabilities = flip_averaged_probabilities(model, images, amp_dtype, tta)
        yield (
            batch,
            [
                F.interpolate(
                    probability[None], size=tuple(size), mode="bilinear", align_corners=False
                )[0, 0]
                .cpu()
                .numpy()
                .astype(np.float32)
                for probability, size in zip(probabilities, batch["size"], strict=True)
            ],
        )


def predict_probabilities(
    model: nn.Module,
    loader: Iterable[dict],
    device: torch.device | str,
    amp_dtype: torch.dtype | None = None,
    tta: str = "none",
) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """Yield (id, probability float32 HxW, gt bool HxW), the probability resized to the mask's
    size (see batch_probabilities)."""
    for batch, probabilities in batch_probabilities(model, loader, device, amp_dtype, tta):
        for probability, mask, image_id, size in zip(
            probabilities, batch["mask"], batch["id"], batch["size"], strict=True
        ):
            gt = _as_bool_mask(mask, image_id)
            if tuple(size) != gt.shape:
                raise ValueError(
                    f"predict_probabilities: image {image_id!r} has size {tuple(size)} but its "
                    f"mask is {gt.shape}; the dataset must report the mask's original size."
                )
            yield image_id, probability, gt


def evaluate_predictions(
    predictions: Iterable[tuple[str, np.ndarray, np.ndarray]],
    *,
    size_strata: Mapping[str, float],
    nsd_tolerance: float | None,
    threshold: float = THRESHOLD,
    progress: bool = False,
    test_sets: Mapping[str, str] | None = None,
) -> tuple[pd.DataFrame, dict[str, dict[str, float]]]:
    """Score predictions in one pass: the per-image table (Dice, IoU, NSD, HD95 and the image's
    strata) and the PraNet toolbox metrics.

    `size_strata` holds the size thresholds (`polyps.strata.size_thresholds`); `nsd_tolerance`
    is NSD's tolerance as a fraction of the frame's diagonal (None leaves the boundary metrics
    out: the benchmark's baseline). `test_sets` maps every image id to its test set (one set,
    "test", when None); the per-image table keeps each image's set, and the toolbox metrics
    come per set and pooled over all images: {"pooled": {...}, "<set>": {...}, ...}.
    """
    pooled = ToolboxMetrics()
    toolboxes: dict[str, ToolboxMetrics] = {POOLED: pooled}
    named_sets = set((test_sets or {}).values())
    if len(named_sets) == 1:  # one test set: its toolbox metrics are the pooled ones
        toolboxes[named_sets.pop()] = pooled
    rows = []
    for image_id, probability, gt in tqdm(predictions, desc="evaluating", disable=not progress):
        pred = binarise(torch.from_numpy(probability), threshold)
        dice, iou = dice_iou(pred[None], torch.from_numpy(gt)[None])
        test_set = _test_set(test_sets, image_id)
        pooled.step(probability, gt)
        if test_sets is not None:
            toolbox = toolboxes.setdefault(test_set, ToolboxMetrics())
            if toolbox is not pooled:
                toolbox.step(probability, gt)
        height, width = gt.shape
        foreground_fraction = float(gt.mean())
        polyps = count_polyps(gt)
        boundary = {} if nsd_tolerance is None else boundary_scores(pred.numpy(), gt, nsd_tolerance)
        rows.append(
            {
                "id": image_id,
                "test_set": test_set,
                "dice": dice.item(),
                "iou": iou.item(),
                **boundary,
                "height": height,
                "width": width,
                "foreground_fraction": foreground_fraction,
                "size_stratum": size_stratum(foreground_fraction, size_strata),
                "n_polyps": polyps,
                "count_stratum": count_stratum(polyps),
            }
        )
    if not rows:
        raise ValueError("evaluate_predictions: no predictions to evaluate (empty dataset?).")
    columns = [
        column
        for column in PER_IMAGE_COLUMNS
        if nsd_tolerance is not None or column not in BOUNDARY_COLUMNS
    ]
    per_image = pd.DataFrame(rows, columns=columns)
    duplicated = per_image["id"][per_image["id"].duplicated()].unique().tolist()
    if duplicated:
        raise ValueError(f"evaluate_predictions: image ids occur more than once: {duplicated[:5]}.")
    results = {POOLED: pooled.results()}
    for name, toolbox in toolboxes.items():
        results[name] = dict(results[POOLED]) if toolbox is pooled else toolbox.results()
    return per_image, results


def _test_set(test_sets: Mapping[str, str] | None, image_id: str) -> str:
    if test_sets is None:
        return DEFAULT_TEST_SET
    if image_id not in test_sets:
        raise ValueError(
            f"evaluate_predictions: image {image_id!r} is in no test set of test_sets."
        )
    return test_sets[image_id]


def _as_bool_mask(mask: np.ndarray | torch.Tensor, image_id: str) -> np.ndarray:
    """Return a (H,W) bool mask from a bool or 0/1 integer mask (array or tensor)."""
    mask = mask.cpu().numpy() if isinstance(mask, torch.Tensor) else np.asarray(mask)
    if mask.ndim == 3 and mask.shape[0] == 1:
        mask = mask[0]
    if mask.ndim != 2:
        raise ValueError(f"image {image_id!r}: mask must be (H,W), got shape {mask.shape}.")
    if mask.dtype == bool:
        return mask
    if not np.isin(mask, (0, 1)).all():
        raise ValueError(
            f"image {image_id!r}: mask values must be 0/1 or bool, got {np.unique(mask)[:8]}...; "
            "binarise masks (> 127 on 0..255) in the dataset."
        )
    return mask.astype(bool)
