"""Nodes of the training pipeline: train one run, then evaluate it on its test split.

A run is one dataset x backbone x head. torch, timm and the data code are imported inside the
nodes so that registering the grid's pipelines stays fast.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pandas as pd


def run_settings(run: dict[str, str], settings: dict[str, Any], reproduce: dict) -> dict:
    """Shared settings with this run's ``reproduce.overrides`` merged in (nested keys)."""
    merged = copy.deepcopy(settings)
    stack = [(merged, (reproduce.get("overrides") or {}).get(run["name"], {}))]
    while stack:
        target, changes = stack.pop()
        for key, value in changes.items():
            if isinstance(value, dict) and isinstance(target.get(key), dict):
                stack.append((target[key], value))
            else:
                target[key] = copy.deepcopy(value)
    return merged


def run_directory(paths: dict[str, str], run: dict[str, str]) -> Path:
    """Where a run keeps its checkpoints: ``<paths.models>/<dataset>/<backbone>-<head>``."""
    return Path(paths["models"]) / run["dataset"] / f"{run['backbone']}-{run['head']}"


def _build_network(run: dict[str, str], model: dict[str, Any], pretrained: bool):
    from ssformer_repro.models import build_model

    weights = (model.get("pretrained") or {}).get(run["backbone"]) if pretrained else None
    head_options = (model.get("head_options") or {}).get(run["head"]) or {}
    return build_model(run["backbone"], run["head"], pretrained=weights, **head_options)


def train_run(
    decoded_cache,
    training: dict[str, Any],
    augmentation: dict[str, Any],
    model: dict[str, Any],
    paths: dict[str, str],
    reproduce: dict[str, Any],
    tracking: dict[str, Any],
    run: dict[str, str],
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Train one run on the cached train split, selecting its best epoch on the val split."""
    from ssformer_repro.data.augment import build_eval_transform, build_train_transform
    from ssformer_repro.data.dataset import CachedSegmentationDataset
    from ssformer_repro.tracking import child_run, git_commit
    from ssformer_repro.training.distributed import DistributedContext
    from ssformer_repro.training.failures import explained_resource_errors
    from ssformer_repro.training.loop import TrainingConfig, seed_everything, train_segmenter

    if not DistributedContext.from_env().is_main:
        tracking = {**tracking, "enabled": False}  # under torchrun, rank 0 alone logs to MLflow
    settings = run_settings(run, {"training": training, "model": model}, reproduce)
    config = TrainingConfig.from_dict(settings["training"])
    seed_everything(config.seed)
    network = _build_network(run, settings["model"], pretrained=True)
    train_transform = build_train_transform(augmentation, seed=config.seed)
    train_set = CachedSegmentationDataset.from_cache(decoded_cache, train_transform, "train")
    val_transform = build_eval_transform(augmentation)
    val_set = CachedSegmentationDataset.from_cache(decoded_cache, val_transform, "val")
    # kedro runs from the project root, so the working directory is the project's git checkout.
    params = {**run, **settings, "augmentation": augmentation, "git_commit": git_commit(Path.cwd())}
    processes = DistributedContext.from_env().world_size
    with (
        child_run(tracking, run["name"], params) as tracked,
        explained_resource_errors(run["name"], config.batch_size, processes),
    ):
        result = train_segmenter(
            network,
            train_set,
            val_set,
            config,
            run_dir=run_directory(paths, run),
            run_name=run["name"],
            on_epoch_end=tracked.log_epoch,
        )
        if tracking.get("log_checkpoints"):
            tracked.log_artifact(result.best_checkpoint, artifact_path="checkpoints")
    summary = {
        **run,
        "checkpoint": str(result.best_checkpoint),
        "best_epoch": result.best_epoch,
        "best_val_mdice": result.best_val_mdice,
        "epochs": config.epochs,
        "mlflow_run_id": tracked.run_id,
    }
    return summary, result.history


def evaluate_run(
    split_manifest: pd.DataFrame,
    training_summary: dict[str, Any],
    augmentation: dict[str, Any],
    model: dict[str, Any],
    evaluation: dict[str, Any],
    reproduce: dict[str, Any],
    tracking: dict[str, Any],
    run: dict[str, str],
):
    """Score the best checkpoint on the test split at each mask's original size."""
    from torch.utils.data import DataLoader, Subset

    from ssformer_repro.data.augment import build_eval_transform
    from ssformer_repro.data.dataset import EvaluationDataset, collate_evaluation
    from ssformer_repro.data.io import read_rgb
    from ssformer_repro.evaluation.figures import plot_prediction_examples, select_examples
    from ssformer_repro.evaluation.metrics import EMPTY_MASK_CONVENTION, summarise_scores
    from ssformer_repro.evaluation.predict import evaluate_predictions, predict_probabilities
    from ssformer_repro.tracking import existing_child_run
    from ssformer_repro.training.device import amp_settings, resolve_device
    from ssformer_repro.training.failures import explained_resource_errors
    from ssformer_repro.training.loop import load_best_model

    settings = run_settings(run, {"model": model, "evaluation": evaluation}, reproduce)
    device = resolve_device(settings["evaluation"].get("device", "auto"))
    amp = amp_settings(device, settings["evaluation"].get("amp", "off"))
    amp_dtype = amp.dtype if amp.enabled else None
    network = _build_network(run, settings["model"], pretrained=False)
    network = load_best_model(network, training_summary["checkpoint"]).to(device)

    test_set = EvaluationDataset(split_manifest, "test", build_eval_transform(augmentation))
    test_rows = test_set.samples

    def loader(dataset) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=settings["evaluation"]["batch_size"],
            num_workers=settings["evaluation"]["num_workers"],
            collate_fn=collate_evaluation,
        )

    threshold = settings["evaluation"]["threshold"]
    batch_size = settings["evaluation"]["batch_size"]
    with explained_resource_errors(run["name"], batch_size, setting="evaluation.batch_size"):
        per_image, toolbox = evaluate_predictions(
            predict_probabilities(network, loader(test_set), device, amp_dtype),
            threshold=threshold,
            progress=True,
        )
    metrics = {
        **run,
        **summarise_scores(per_image),
        "toolbox": toolbox,
        "threshold": threshold,
        "convention": EMPTY_MASK_CONVENTION,
    }

    chosen = select_examples(per_image)
    positions = [test_rows.index[test_rows["id"] == image_id][0] for image_id in chosen.values()]
    predictions = predict_probabilities(
        network, loader(Subset(test_set, positions)), device, amp_dtype
    )
    dice_by_id = per_image.set_index("id")["dice"]
    examples = [
        {
            "label": label,
            "id": image_id,
            "dice": float(dice_by_id[image_id]),
            "image": read_rgb(test_rows.loc[position, "image_path"]),
            "mask": gt,
            "probability": probability,
        }
        for label, position, (image_id, probability, gt) in zip(
            chosen, positions, predictions, strict=True
        )
    ]
    figure = plot_prediction_examples(examples, title=f"{run['name']}: test predictions")

    tracked = existing_child_run(tracking, training_summary.get("mlflow_run_id"))
    tracked.log_metrics(
        {"test_mdice": metrics["mdice"], "test_miou": metrics["miou"]}
        | {f"test_{name}": value for name, value in toolbox.items()}
    )
    tracked.log_figure(figure, "test_predictions.png")
    return per_image, metrics, figure
