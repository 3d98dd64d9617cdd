"""Evaluation throughput: `predict_probabilities` and `evaluate_predictions` on an EvaluationDataset.

Prediction covers the evaluation pipeline's own path: decoding the full-size JPEG frame and
mask, resizing the frame, the forward pass, and resizing each probability map back to its mask's
size. Scoring (Dice/IoU plus the PraNet-toolbox metrics) runs on the host, once per model.
The evaluation node predicts in fp32; on CUDA the bf16-autocast figure is measured beside it.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from ssformer_repro.benchmark.common import BenchmarkSettings, spread, synchronize
from ssformer_repro.benchmark.workspace import Workspace
from ssformer_repro.evaluation.predict import evaluate_predictions, predict_probabilities
from ssformer_repro.models import build_model
from ssformer_repro.polyps.augment import build_eval_transform
from ssformer_repro.polyps.torch_datasets import EvaluationDataset, collate_evaluation
from ssformer_repro.training.loop import seed_everything

logger = logging.getLogger(__name__)

PRECISIONS: dict[str, torch.dtype | None] = {"fp32": None, "bf16 autocast": torch.bfloat16}


def measure_evaluation(
    backbone: str, head: str, workspace: Workspace, settings: BenchmarkSettings
) -> list[dict[str, Any]]:
    """Rows of prediction and scoring images/s over the workspace's frames, per precision."""
    dataset = EvaluationDataset(
        workspace.manifest, None, build_eval_transform({"image_size": settings.size})
    )
    seed_everything(settings.seed)
    model = build_model(backbone, head).to(settings.device)
    precisions = PRECISIONS if settings.on_cuda else {"fp32": None}
    rows = []
    for precision, amp_dtype in precisions.items():
        logger.info("Evaluating %s-%s in %s.", backbone, head, precision)
        warmup = Subset(dataset, range(min(settings.batch_size, len(dataset))))
        _predict(model, warmup, amp_dtype, settings)
        rates = []
        for _ in range(settings.repeats):
            synchronize(settings.device)
            started = time.perf_counter()
            predictions = _predict(model, dataset, amp_dtype, settings)
            synchronize(settings.device)
            rates.append(len(dataset) / (time.perf_counter() - started))
        started = time.perf_counter()
        evaluate_predictions(predictions)
        scoring_rate = len(dataset) / (time.perf_counter() - started)
        rows.append(
            {
                "backbone": backbone,
                "head": head,
                "precision": precision,
                "size": settings.size,
                "images": len(dataset),
                "predict_images_per_second": spread(rates),
                "score_images_per_second": scoring_rate,
            }
        )
    return rows


def _predict(
    model: torch.nn.Module,
    dataset: Dataset,
    amp_dtype: torch.dtype | None,
    settings: BenchmarkSettings,
) -> list:
    """All (id, probability, mask) predictions of `dataset`, batched as the evaluation node does."""
    loader = DataLoader(
        dataset,
        batch_size=settings.batch_size,
        num_workers=settings.train_workers,
        collate_fn=collate_evaluation,
    )
    return list(predict_probabilities(model, loader, settings.device, amp_dtype))
