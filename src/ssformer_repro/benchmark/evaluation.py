"""Evaluation throughput: `predict_probabilities` (decode the full-size frame, resize, forward,
resize back to the mask) and `evaluate_predictions` (Dice/IoU + PraNet toolbox + strata, on the
host) over an `EvaluationDataset`, scored without and with the boundary metrics (NSD, HD95) side
by side; fp32 as the evaluation node runs, and bf16 autocast on CUDA."""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

import pandas as pd
import torch
from torch.utils.data import DataLoader, Subset

from ssformer_repro.benchmark.common import Run, precisions, spread, table, timed
from ssformer_repro.benchmark.settings import BenchmarkSettings
from ssformer_repro.evaluation.predict import evaluate_predictions, predict_probabilities
from ssformer_repro.evaluation.settings import EvaluationSettings
from ssformer_repro.models import build_model
from ssformer_repro.polyps.augment import build_eval_transform
from ssformer_repro.polyps.settings import AugmentationSettings
from ssformer_repro.polyps.strata import size_thresholds
from ssformer_repro.polyps.torch_datasets import EvaluationDataset, collate_evaluation
from ssformer_repro.training.parts import seed_everything

logger = logging.getLogger(__name__)


def measure(run: Run) -> dict[str, Any]:
    """Prediction and scoring rates of every model over the synthetic frames."""
    return {"rows": run.per_model(measure_evaluation)}


def measure_evaluation(backbone: str, head: str, run: Run, settings: BenchmarkSettings) -> list:
    """Rows of prediction and scoring images/s over the run's frames, per precision."""
    transform = build_eval_transform(AugmentationSettings(image_size=settings.size))
    dataset, device = EvaluationDataset(run.manifest, None, transform), settings.device
    seed_everything(settings.seed)
    model = build_model(backbone, head).to(device)
    options = dict(num_workers=settings.train_workers, collate_fn=collate_evaluation)
    loader = DataLoader(dataset, settings.batch_size, **options)
    warmup = DataLoader(Subset(dataset, range(settings.batch_size)), settings.batch_size, **options)
    row = dict(backbone=backbone, head=head, size=settings.size, batch_size=settings.batch_size)
    rows = []
    for precision, dtype in precisions(settings).items():
        logger.info("Evaluating %s-%s in %s.", backbone, head, precision)
        predict = partial(predict_probabilities, model, device=device, amp_dtype=dtype)
        list(predict(warmup))
        predicting = []
        for _ in range(settings.repeats):
            predictions, seconds = timed(partial(list, predict(loader)), device)
            predicting.append(len(dataset) / seconds)
        without, with_boundary = scoring_seconds(predictions)
        predict_seconds = len(dataset) / spread(predicting)["mean"]
        rates = dict(predict_images_per_second=spread(predicting))
        rates["score_images_per_second"] = len(dataset) / without  # each scored once, on the host
        rates["score_boundary_images_per_second"] = len(dataset) / with_boundary
        rates["scoring_slowdown"] = with_boundary / without
        rates["evaluation_slowdown"] = (predict_seconds + with_boundary) / (
            predict_seconds + without
        )
        rows.append(row | dict(precision=precision, images=len(dataset)) | rates)
    return rows


def scoring_seconds(predictions: list) -> tuple[float, float]:
    """Seconds `evaluate_predictions` takes over `predictions` without the boundary metrics and
    with them (the evaluation's default tolerance), one after the other, after one untimed image
    with them (MONAI's import, once per process, is not the metrics' cost); the size strata are
    the tertiles of these frames' masks."""
    fractions = [float(gt.mean()) for _, _, gt in predictions]
    strata = size_thresholds(pd.DataFrame({"split": "train", "foreground_fraction": fractions}))
    tolerance = EvaluationSettings().nsd_tolerance
    evaluate_predictions(predictions[:1], size_strata=strata, nsd_tolerance=tolerance)
    seconds = {}
    for name, nsd_tolerance in (("without", None), ("with", tolerance)):
        score = partial(
            evaluate_predictions, predictions, size_strata=strata, nsd_tolerance=nsd_tolerance
        )
        seconds[name] = timed(score, torch.device("cpu"))[1]
    return seconds["without"], seconds["with"]


def markdown(result: dict[str, Any], results: dict[str, Any]) -> str:
    """One row per model and precision."""
    columns = "backbone, head, precision, size, batch_size, images, predict_images_per_second:"
    columns += "predict images/s, score_images_per_second:scoring images/s, "
    columns += "score_boundary_images_per_second:scoring with NSD + HD95 images/s, "
    columns += "scoring_slowdown:scoring slowdown, evaluation_slowdown:evaluation slowdown"
    low, high = results["workspace"]["frame_size"]
    return (
        f"Over {results['workspace']['images']} full-size synthetic frames of {low}-{high} px: "
        f"prediction {results['settings']['repeats']} times (mean ± std) after one warm-up "
        "batch; scoring (Dice/IoU, PraNet toolbox, strata) once without and once with the "
        "boundary metrics, after one untimed image; the slowdowns are with / without, of the "
        f"scoring and of the whole evaluation (prediction + scoring).\n\n{table(result['rows'], columns)}"
    )
