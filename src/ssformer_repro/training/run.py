"""Train one run of the grid: its network, its dataset's cached splits, MLflow, the loop."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from ssformer_repro.grid.runs import GridRun
from ssformer_repro.models import build_configured_model
from ssformer_repro.polyps.augment import build_eval_transform, build_train_transform
from ssformer_repro.polyps.cache import DecodedCache
from ssformer_repro.polyps.torch_datasets import CachedSegmentationDataset
from ssformer_repro.tracking.runs import child_run, git_commit
from ssformer_repro.training.distributed import DistributedContext
from ssformer_repro.training.failures import explained_resource_errors
from ssformer_repro.training.loop import train_segmenter
from ssformer_repro.training.parts import seed_everything
from ssformer_repro.training.settings import TrainingConfig


def train_run(
    run: GridRun,
    settings: dict[str, Any],
    decoded_cache: DecodedCache,
    run_folder: Path,
    tracking: dict[str, Any],
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Train `run` on the cache's train split, selecting its best epoch on the val split.

    `settings` holds the run's resolved `training`, `model` and `augmentation` blocks. Returns
    the run's summary (best checkpoint, epoch, validation mDice, MLflow child run) and history.
    """
    context = DistributedContext.from_env()
    if not context.is_main:
        tracking = {**tracking, "enabled": False}  # under torchrun, rank 0 alone logs to MLflow
    config = TrainingConfig.from_dict(settings["training"])
    seed_everything(config.seed)
    network = build_configured_model(run.backbone, run.head, settings["model"])
    augmentation = settings["augmentation"]
    train_set = CachedSegmentationDataset.from_cache(
        decoded_cache, build_train_transform(augmentation, seed=config.seed), "train"
    )
    val_set = CachedSegmentationDataset.from_cache(
        decoded_cache, build_eval_transform(augmentation), "val"
    )
    # kedro runs from the project root, so the working directory is the project's git checkout.
    params = {**run.fields(), "name": run.name, **settings, "git_commit": git_commit(Path.cwd())}
    with (
        child_run(tracking, run.name, params) as tracked,
        explained_resource_errors(run.name, config.batch_size, context.world_size),
    ):
        result = train_segmenter(
            network,
            train_set,
            val_set,
            config,
            run_dir=run_folder,
            run_name=run.name,
            on_epoch_end=tracked.log_epoch,
        )
        if tracking.get("log_checkpoints"):
            tracked.log_artifact(result.best_checkpoint, artifact_path="checkpoints")
    summary = {
        **run.fields(),
        "name": run.name,
        "checkpoint": str(result.best_checkpoint),
        "best_epoch": result.best_epoch,
        "best_val_mdice": result.best_val_mdice,
        "epochs": config.epochs,
        "mlflow_run_id": tracked.run_id,
    }
    return summary, result.history
