"""Nodes of the training pipeline: train one run, score it on its test split, draw examples.

A run is one dataset x backbone x head (`GridRun`). Each node resolves the run's settings
(shared blocks plus its `reproduce.overrides` entry) and calls library code. torch and the
models are imported inside the nodes so that registering the grid's pipelines stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from ssformer_repro.grid.runs import GridRun, run_settings


def train(
    decoded_cache,
    split_manifest: pd.DataFrame,
    run_folder: Path,
    training: dict[str, Any],
    model: dict[str, Any],
    augmentation: dict[str, Any],
    reproduce: dict[str, Any],
    tracking: dict[str, Any],
    run: GridRun,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Train the run on its dataset's cached train split; its summary and per-epoch history."""
    from ssformer_repro.training.run import train_run

    shared = {"training": training, "model": model, "augmentation": augmentation}
    settings = run_settings(run, shared, reproduce)
    return train_run(run, settings, decoded_cache, split_manifest, run_folder, tracking)


def evaluate(
    split_manifest: pd.DataFrame,
    size_strata: dict[str, Any],
    training_summary: dict[str, Any],
    run_folder: Path,
    model: dict[str, Any],
    augmentation: dict[str, Any],
    evaluation: dict[str, Any],
    reproduce: dict[str, Any],
    run: GridRun,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Score the best checkpoint on the test split at each mask's original size, with each
    image's strata (`size_strata`: the dataset's polyp-size thresholds)."""
    from ssformer_repro.evaluation.evaluate import evaluate_checkpoint

    shared = {"model": model, "augmentation": augmentation, "evaluation": evaluation}
    settings = run_settings(run, shared, reproduce)
    checkpoint = training_summary["checkpoint"]
    return evaluate_checkpoint(run, settings, split_manifest, checkpoint, size_strata, run_folder)


def plot_examples(
    split_manifest: pd.DataFrame,
    test_scores: pd.DataFrame,
    training_summary: dict[str, Any],
    run_folder: Path,
    model: dict[str, Any],
    augmentation: dict[str, Any],
    evaluation: dict[str, Any],
    reproduce: dict[str, Any],
    run: GridRun,
) -> bytes:
    """The best, median and worst test images with the run's predictions, as one PNG figure."""
    from ssformer_repro.evaluation.evaluate import plot_test_examples

    shared = {"model": model, "augmentation": augmentation, "evaluation": evaluation}
    settings = run_settings(run, shared, reproduce)
    checkpoint = training_summary["checkpoint"]
    return plot_test_examples(run, settings, split_manifest, test_scores, checkpoint, run_folder)
