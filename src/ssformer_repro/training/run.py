"""Train one run of the grid: its network, its dataset's cached splits, MLflow, the loop.

A run's result depends on its settings and on its inputs: the model settings of its backbone
and head and their weights file, its augmentation, its dataset (the split manifest and the
decoded cache) and the code that computes it (storage.digests.RESULT_PACKAGES). `run_inputs`
fingerprints them; `last.pt` keeps the fingerprint, and a run whose fingerprint changed is
refused or restarted (`training.on_changed_settings`), naming what changed. `kedro run` and
`dvc repro` compute the same fingerprint, so either resumes what the other trained.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from ssformer_repro.grid.run_config import RunConfig, result_inputs
from ssformer_repro.grid.runs import GridRun
from ssformer_repro.models import build_configured_model
from ssformer_repro.models.pretrained import is_weights_path
from ssformer_repro.models.segmenter import model_choices
from ssformer_repro.polyps.augment import build_eval_transform, build_train_transform
from ssformer_repro.polyps.cache import DecodedCache
from ssformer_repro.polyps.splits import split_for_fold
from ssformer_repro.polyps.torch_datasets import CachedSegmentationDataset
from ssformer_repro.storage.digests import bytes_digest, path_digest
from ssformer_repro.tracking.runs import child_run, git_commit
from ssformer_repro.training.checkpoint import HISTORY_COLUMNS, RunRecord
from ssformer_repro.training.distributed import DistributedContext
from ssformer_repro.training.failures import explained_resource_errors
from ssformer_repro.training.loop import train_segmenter
from ssformer_repro.training.parts import seed_everything
from ssformer_repro.training.settings import TrainingSettings

logger = logging.getLogger(__name__)


def train_run(
    config: RunConfig, decoded_cache: DecodedCache, split_manifest: pd.DataFrame, run_folder: Path
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Train `config.run` on the cache's train split, selecting its best epoch on the val split.

    Returns the run's summary (best checkpoint, epoch, validation mDice, MLflow child run) and
    history. A run that already finished with these settings and inputs returns its results as
    they are: nothing is trained, and no MLflow run is opened.
    """
    run, training = config.run, config.training
    context = DistributedContext.from_env()
    # Under torchrun, rank 0 alone logs to MLflow.
    tracking = config.tracking.model_copy(update={} if context.is_main else {"enabled": False})
    split_manifest = split_for_fold(split_manifest, run.fold)
    inputs = run_inputs(config, decoded_cache, split_manifest)  # this fold's manifest
    record = RunRecord.judge(run_folder, training, inputs)
    if record.action == "done":
        logger.info(
            "run %r: already trained for %d epochs; nothing to do.", run.name, training.epochs
        )
        return _summary(run, training, run_folder, record.progress), _history(record.progress)

    seed_everything(training.seed)
    network = build_configured_model(run.backbone, run.head, config.model)
    train_set = CachedSegmentationDataset.from_cache(
        decoded_cache.select(_ids(split_manifest, "train")),
        build_train_transform(config.augmentation, seed=training.seed),
    )
    val_set = CachedSegmentationDataset.from_cache(
        decoded_cache.select(_ids(split_manifest, "val")),
        build_eval_transform(config.augmentation),
    )
    # kedro runs from the project root, so the working directory is the project's git checkout.
    # The settings as configured (defaults left out), as the MLflow run's parameters.
    settings = config.model_dump(
        mode="json", include={"training", "model", "augmentation"}, exclude_unset=True
    )
    params = {**run.fields(), "name": run.name, **settings, "git_commit": git_commit(Path.cwd())}
    resume_id = (record.progress or {}).get("metadata", {}).get("mlflow_run_id")
    with (
        child_run(tracking, run.name, params, resume_id, tags=run.fields()) as tracked,
        explained_resource_errors(run.name, training.batch_size, context.world_size),
    ):
        result = train_segmenter(
            network,
            train_set,
            val_set,
            training,
            run_dir=run_folder,
            run_name=run.name,
            on_epoch_end=tracked.log_epoch,
            inputs=inputs,
            metadata={"mlflow_run_id": tracked.run_id},
            record=record,
        )
        if config.tracking.log_checkpoints:
            tracked.log_artifact(result.best_checkpoint, artifact_path="checkpoints")
    last = {
        "best_epoch": result.best_epoch,
        "best_val_mdice": result.best_val_mdice,
        "metadata": {"mlflow_run_id": tracked.run_id},
    }
    return _summary(run, training, run_folder, last), result.history


def run_inputs(
    config: RunConfig, decoded_cache: DecodedCache, split_manifest: pd.DataFrame
) -> dict[str, Any]:
    """What the run's result depends on besides its training settings (see the module doc):
    the model settings of its backbone and head and their weights file, the decoded cache, and
    what every result of the run depends on (`result_inputs`)."""
    model = model_choices(config.run.backbone, config.run.head, config.model)
    weights = model["pretrained"]
    return {
        "model": {
            **model,
            "pretrained_file": path_digest(weights)
            if weights and is_weights_path(weights)
            else None,
        },
        "cache": cache_digest(decoded_cache),
        **result_inputs(config, split_manifest),
    }


def cache_digest(cache: DecodedCache) -> str:
    """MD5 of a decoded cache: its ids, splits, images and masks."""
    labels = "\n".join(
        f"{sample_id},{split}" for sample_id, split in zip(cache.ids, cache.splits, strict=True)
    )
    return bytes_digest([labels.encode(), memoryview(cache.images), memoryview(cache.masks)])


def _ids(manifest: pd.DataFrame, split: str) -> list[str]:
    return manifest.loc[manifest["split"] == split, "id"].tolist()


def _summary(
    run: GridRun, config: TrainingSettings, run_folder: Path, last: dict
) -> dict[str, Any]:
    return {
        **run.fields(),
        "name": run.name,
        "checkpoint": str(run_folder / "best.pt"),
        "best_epoch": last["best_epoch"],
        "best_val_mdice": last["best_val_mdice"],
        "epochs": config.epochs,
        "mlflow_run_id": last.get("metadata", {}).get("mlflow_run_id"),
    }


def _history(checkpoint: dict) -> pd.DataFrame:
    return pd.DataFrame(checkpoint["history"], columns=HISTORY_COLUMNS)
