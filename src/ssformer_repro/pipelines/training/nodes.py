"""Nodes of the training pipeline: train one run, score it on its test split, draw examples.

A run is one dataset x backbone x head x seed (`GridRun`); its `run_config` holds its identity
and its own settings, checked before any node ran. torch and the models are imported inside the
nodes so that registering the grid's pipelines stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from ssformer_repro.grid.run_config import RunConfig


def train(
    run_config: RunConfig, decoded_cache, split_manifest: pd.DataFrame, run_folder: Path
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Train the run on its dataset's cached train split; its summary and per-epoch history."""
    from ssformer_repro.training.run import train_run

    return train_run(run_config, decoded_cache, split_manifest, run_folder)


def evaluate(
    run_config: RunConfig,
    split_manifest: pd.DataFrame,
    size_strata: dict[str, Any],
    training_summary: dict[str, Any],
    run_folder: Path,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Score the best checkpoint on the test split at each mask's original size, with each
    image's strata (`size_strata`: the dataset's polyp-size thresholds)."""
    from ssformer_repro.evaluation.evaluate import evaluate_checkpoint

    checkpoint = training_summary["checkpoint"]
    return evaluate_checkpoint(run_config, split_manifest, checkpoint, size_strata, run_folder)


def plot_examples(
    run_config: RunConfig,
    split_manifest: pd.DataFrame,
    test_scores: pd.DataFrame,
    training_summary: dict[str, Any],
    run_folder: Path,
) -> bytes:
    """The best, median and worst test images with the run's predictions, as one PNG figure."""
    from ssformer_repro.evaluation.evaluate import plot_test_examples

    checkpoint = training_summary["checkpoint"]
    return plot_test_examples(run_config, split_manifest, test_scores, checkpoint, run_folder)
