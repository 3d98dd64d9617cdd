"""Score a run's best checkpoint on its test split, and draw its best, median and worst images."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from ssformer_repro.evaluation.boundary import boundary_convention
from ssformer_repro.evaluation.figures import figure_png, plot_prediction_examples, select_examples
from ssformer_repro.evaluation.metrics import (
    EMPTY_MASK_CONVENTION,
    SUMMARY_KEYS,
    summarise_scores,
)
from ssformer_repro.evaluation.predict import (
    POOLED,
    SCORE_COLUMNS,
    evaluate_predictions,
    predict_probabilities,
)
from ssformer_repro.grid.run_config import RunConfig, result_inputs
from ssformer_repro.models import build_configured_model
from ssformer_repro.polyps.augment import build_eval_transform
from ssformer_repro.polyps.io import read_rgb
from ssformer_repro.polyps.splits import split_for_fold
from ssformer_repro.polyps.torch_datasets import EvaluationDataset, collate_evaluation
from ssformer_repro.storage.digests import path_digest
from ssformer_repro.storage.records import store_record, stored_record
from ssformer_repro.training.checkpoint import CheckpointError, load_best_model
from ssformer_repro.training.device import amp_settings, cpu_threads, resolve_device
from ssformer_repro.training.failures import explained_resource_errors

logger = logging.getLogger(__name__)

# Kept in the run's folder (data/06_models/<run>/): the last scores and example figure, and
# what they came from.
EVALUATION_RECORD = "evaluation.json"
EVALUATION_SCORES = "evaluation_scores.csv"
# Read back from CSV, an empty HD95 is NaN (undefined: one mask empty); every other empty field
# stays "" as the catalog reads it (keep_default_na: false keeps ids such as "NA" strings).
UNDEFINED_SCORES = {column: [""] for column in ("hd95", "hd95_without_tta")}
EXAMPLES_RECORD = "test_predictions.json"
EXAMPLES_FIGURE = "test_predictions.png"
POOLING = (
    "mdice, miou, mnsd, mhd95, hd95_undefined, n_images and toolbox are over every test image "
    "pooled; test_sets holds each test set's own; mean_over_test_sets is the unweighted mean of "
    "the sets' mdice and miou."
)


class TrainedModel:
    """A run's best checkpoint loaded into its network, on the evaluation device and precision."""

    def __init__(self, config: RunConfig, checkpoint: str | Path) -> None:
        run = self.run = config.run
        self.config = config
        self.evaluation = config.evaluation
        self.device = resolve_device(self.evaluation.device)
        amp = amp_settings(self.device, self.evaluation.amp)
        self.amp_dtype = amp.dtype if amp.enabled else None
        self.tta = self.evaluation.tta
        network = build_configured_model(
            run.backbone, run.head, config.model, with_pretrained=False
        )
        try:
            network = load_best_model(network, checkpoint)
        except RuntimeError as error:  # load_state_dict: missing, unexpected or resized keys
            first_line = str(error).splitlines()[0]
            raise CheckpointError(
                f"{checkpoint} does not hold a {run.backbone} + {run.head} network with these "
                f"model settings ({first_line}). Give the run it was trained as."
            ) from error
        self.network: nn.Module = network.to(self.device).eval()

    def test_set(self, split_manifest: pd.DataFrame) -> EvaluationDataset:
        """The manifest's test split, resized and normalised as in training."""
        transform = build_eval_transform(self.config.augmentation)
        return EvaluationDataset(split_manifest, "test", transform)

    def predictions(self, dataset: Dataset, tta: str | None = None):
        """(id, probability at the mask's size, mask) of every image of `dataset`, in batches,
        with the evaluation's test-time augmentation unless `tta` says otherwise."""
        loader = DataLoader(
            dataset,
            batch_size=self.evaluation.batch_size,
            num_workers=self.evaluation.num_workers,
            collate_fn=collate_evaluation,
        )
        tta = self.tta if tta is None else tta
        return predict_probabilities(self.network, loader, self.device, self.amp_dtype, tta)


def evaluate_checkpoint(
    config: RunConfig,
    split_manifest: pd.DataFrame,
    checkpoint: str | Path,
    size_strata: dict[str, Any],
    run_folder: Path | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Per-image test scores and strata, and the run's test metrics (mDice, mIoU, mNSD, mHD95,
    toolbox, conventions); `size_strata`: the dataset's polyp-size thresholds.

    With `run_folder`, the scores are kept there with what they were computed from (the
    checkpoint's and manifest's contents, the size thresholds, the evaluation and augmentation
    settings, the code); scoring the same again returns them without predicting anything.
    """
    run = config.run
    split_manifest = split_for_fold(split_manifest, run.fold)
    key = evaluation_key(config, split_manifest, checkpoint, size_strata)
    if run_folder is not None:
        stored = _stored_evaluation(run_folder, key)
        if stored is not None:
            logger.info("run %r: test split already scored from this checkpoint.", run.name)
            return stored
    per_image, metrics = _score(config, split_manifest, checkpoint, size_strata)
    if run_folder is not None:
        _store_evaluation(run_folder, key, per_image, metrics)
    return per_image, metrics


def evaluation_key(
    config: RunConfig,
    split_manifest: pd.DataFrame,
    checkpoint: str | Path,
    size_strata: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What a run's test scores depend on: its checkpoint, its evaluation settings and what
    every result of the run depends on (`result_inputs`); the size thresholds only set their
    strata columns, and the example figure is keyed without them."""
    return {
        "checkpoint": path_digest(checkpoint),
        "size_strata": size_strata,
        # How many threads score sets the speed only: changing it alone re-scores nothing.
        "evaluation": config.evaluation.model_dump(mode="json", exclude={"threads"}),
        **result_inputs(config, split_manifest),
    }


def _stored_evaluation(run_folder: Path, key: dict) -> tuple[pd.DataFrame, dict] | None:
    scores = run_folder / EVALUATION_SCORES
    stored = stored_record(run_folder / EVALUATION_RECORD, key, scores)
    if stored is None:
        return None
    per_image = pd.read_csv(
        scores, dtype={"id": str}, keep_default_na=False, na_values=UNDEFINED_SCORES
    )
    return per_image, stored["metrics"]


def _store_evaluation(run_folder: Path, key: dict, per_image: pd.DataFrame, metrics: dict) -> None:
    store_record(
        run_folder / EVALUATION_RECORD,
        {"key": key, "metrics": metrics},
        {run_folder / EVALUATION_SCORES: per_image.to_csv(index=False).encode()},
    )


def _score(
    config: RunConfig,
    split_manifest: pd.DataFrame,
    checkpoint: str | Path,
    size_strata: dict[str, Any],
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The test scores with the evaluation's TTA; with TTA on, also those without it, beside;
    torch on `evaluation.threads` CPU threads meanwhile."""
    with cpu_threads(config.evaluation.threads):
        model = TrainedModel(config, checkpoint)
        per_image, metrics = _scores(model, split_manifest, model.tta, size_strata)
        if model.tta != "none":
            plain, plain_metrics = _scores(model, split_manifest, "none", size_strata)
            plain = plain.set_index("id").loc[per_image["id"]]
            for column in SCORE_COLUMNS:
                per_image[f"{column}_without_tta"] = plain[column].to_numpy()
            metrics["without_tta"] = {
                key: plain_metrics[key] for key in (*SUMMARY_KEYS, "test_sets")
            }
    return per_image, metrics


def _scores(
    model: TrainedModel, split_manifest: pd.DataFrame, tta: str, size_strata: dict[str, Any]
) -> tuple[pd.DataFrame, dict[str, Any]]:
    run, evaluation = model.run, model.evaluation
    tolerance = evaluation.nsd_tolerance
    test_sets = image_test_sets(split_manifest, run.dataset)
    with explained_resource_errors(
        run.name, evaluation.batch_size, setting="evaluation.batch_size"
    ):
        per_image, toolbox = evaluate_predictions(
            model.predictions(model.test_set(split_manifest), tta),
            size_strata=size_strata,
            nsd_tolerance=tolerance,
            threshold=evaluation.threshold,
            progress=True,
            test_sets=test_sets,
        )
    by_set = {
        name: {**summarise_scores(rows), "toolbox": toolbox[name]}
        for name, rows in per_image.groupby("test_set", sort=True)
    }
    metrics = {
        **run.fields(),
        "name": run.name,
        **summarise_scores(per_image),
        "toolbox": toolbox[POOLED],
        "test_sets": by_set,
        "mean_over_test_sets": {
            key: float(sum(scores[key] for scores in by_set.values()) / len(by_set))
            for key in ("mdice", "miou")
        },
        "pooling": POOLING,
        "threshold": evaluation.threshold,
        "tta": tta,
        "convention": EMPTY_MASK_CONVENTION,
        "nsd_tolerance": tolerance,
        "boundary_convention": boundary_convention(tolerance),
        "size_strata": size_strata,
    }
    return per_image, metrics


def image_test_sets(split_manifest: pd.DataFrame, dataset: str) -> dict[str, str]:
    """The test set of each test image: its subset where the test split holds several (the
    PraNet benchmark's five sets), else the dataset itself."""
    test = split_manifest[split_manifest["split"] == "test"]
    subsets = test["subset"] if "subset" in test else pd.Series(dtype=str)
    several = subsets.nunique() > 1
    return {
        image_id: (subset if several else dataset)
        for image_id, subset in zip(
            test["id"], subsets.reindex(test.index, fill_value=""), strict=True
        )
    }


def plot_test_examples(
    config: RunConfig,
    split_manifest: pd.DataFrame,
    test_scores: pd.DataFrame,
    checkpoint: str | Path,
    run_folder: Path | None = None,
) -> bytes:
    """The best, median and worst test images by Dice, with the model's predictions (PNG).

    With `run_folder`, the figure is kept there with what it was drawn from (what the test
    scores depend on, `evaluation_key`); drawing the same again returns it without loading the
    model.
    """
    run = config.run
    split_manifest = split_for_fold(split_manifest, run.fold)
    key = evaluation_key(config, split_manifest, checkpoint)
    if run_folder is not None:
        figure_file = run_folder / EXAMPLES_FIGURE
        if stored_record(run_folder / EXAMPLES_RECORD, key, figure_file) is not None:
            logger.info("run %r: test examples already drawn from this checkpoint.", run.name)
            return figure_file.read_bytes()
    png = figure_png(_examples_figure(config, split_manifest, test_scores, checkpoint))
    if run_folder is not None:
        store_record(
            run_folder / EXAMPLES_RECORD, {"key": key}, {run_folder / EXAMPLES_FIGURE: png}
        )
    return png


def _examples_figure(
    config: RunConfig,
    split_manifest: pd.DataFrame,
    test_scores: pd.DataFrame,
    checkpoint: str | Path,
) -> Figure:
    run, model = config.run, TrainedModel(config, checkpoint)
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
