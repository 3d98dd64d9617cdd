"""Score a run's best checkpoint on its test split, and draw its best, median and worst images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from ssformer_repro.evaluation.figures import plot_prediction_examples, select_examples
from ssformer_repro.evaluation.metrics import EMPTY_MASK_CONVENTION, summarise_scores
from ssformer_repro.evaluation.predict import evaluate_predictions, predict_probabilities
from ssformer_repro.grid.runs import GridRun
from ssformer_repro.models import build_configured_model
from ssformer_repro.polyps.augment import build_eval_transform
from ssformer_repro.polyps.io import read_rgb
from ssformer_repro.polyps.torch_datasets import EvaluationDataset, collate_evaluation
from ssformer_repro.training.checkpoint import load_best_model
from ssformer_repro.training.device import amp_settings, resolve_device
from ssformer_repro.training.failures import explained_resource_errors


class TrainedModel:
    """A run's best checkpoint loaded into its network, on the evaluation device and precision."""

    def __init__(self, run: GridRun, settings: dict[str, Any], checkpoint: str | Path) -> None:
        evaluation = settings["evaluation"]
        self.run = run
        self.settings = settings
        self.device = resolve_device(evaluation.get("device", "auto"))
        amp = amp_settings(self.device, evaluation.get("amp", "off"))
        self.amp_dtype = amp.dtype if amp.enabled else None
        network = build_configured_model(
            run.backbone, run.head, settings["model"], with_pretrained=False
        )
        self.network: nn.Module = load_best_model(network, checkpoint).to(self.device)

    def test_set(self, split_manifest: pd.DataFrame) -> EvaluationDataset:
        """The manifest's test split, resized and normalised as in training."""
        transform = build_eval_transform(self.settings["augmentation"])
        return EvaluationDataset(split_manifest, "test", transform)

    def predictions(self, dataset: Dataset):
        """(id, probability at the mask's size, mask) of every image of `dataset`, in batches."""
        evaluation = self.settings["evaluation"]
        loader = DataLoader(
            dataset,
            batch_size=evaluation["batch_size"],
            num_workers=evaluation["num_workers"],
            collate_fn=collate_evaluation,
        )
        return predict_probabilities(self.network, loader, self.device, self.amp_dtype)


def evaluate_checkpoint(
    run: GridRun, settings: dict[str, Any], split_manifest: pd.DataFrame, checkpoint: str | Path
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Per-image test scores and the run's test metrics (mDice, mIoU, toolbox, convention)."""
    model = TrainedModel(run, settings, checkpoint)
    evaluation = settings["evaluation"]
    with explained_resource_errors(
        run.name, evaluation["batch_size"], setting="evaluation.batch_size"
    ):
        per_image, toolbox = evaluate_predictions(
            model.predictions(model.test_set(split_manifest)),
            threshold=evaluation["threshold"],
            progress=True,
        )
    metrics = {
        **run.fields(),
        "name": run.name,
        **summarise_scores(per_image),
        "toolbox": toolbox,
        "threshold": evaluation["threshold"],
        "convention": EMPTY_MASK_CONVENTION,
    }
    return per_image, metrics


def plot_test_examples(
    run: GridRun,
    settings: dict[str, Any],
    split_manifest: pd.DataFrame,
    test_scores: pd.DataFrame,
    checkpoint: str | Path,
) -> Figure:
    """The best, median and worst test images by Dice, with the model's predictions."""
    model = TrainedModel(run, settings, checkpoint)
    test_set = model.test_set(split_manifest)
    rows = test_set.samples
    chosen = select_examples(test_scores)
    positions = [rows.index[rows["id"] == image_id][0] for image_id in chosen.values()]
    predictions = model.predictions(Subset(test_set, positions))
    dice_by_id = test_scores.set_index("id")["dice"]
    examples = [
        {
            "label": label,
            "id": image_id,
            "dice": float(dice_by_id[image_id]),
            "image": read_rgb(rows.loc[position, "image_path"]),
            "mask": gt,
            "probability": probability,
        }
        for label, position, (image_id, probability, gt) in zip(
            chosen, positions, predictions, strict=True
        )
    ]
    return plot_prediction_examples(examples, title=f"{run.name}: test predictions")
