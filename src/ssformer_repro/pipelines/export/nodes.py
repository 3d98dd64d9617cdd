"""Node of the export pipeline: a run's best checkpoint to ONNX and to MLflow."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from ssformer_repro.grid.run_config import resolve_run
from ssformer_repro.grid.runs import GridRun


def export_run(
    export: dict[str, Any],
    training_summary: dict[str, Any],
    split_manifest: pd.DataFrame,
    output_root: Path,
    training: dict[str, Any],
    model: dict[str, Any],
    augmentation: dict[str, Any],
    evaluation: dict[str, Any],
    reproduce: dict[str, Any],
    tracking: dict[str, Any],
) -> dict[str, Any]:
    """`<output_root>/<run>/model.onnx`, checked against PyTorch, and the MLflow model."""
    from ssformer_repro.inference.export import export_trained_run

    run = GridRun.parse(export["run"])
    parameters = {
        "training": training,
        "model": model,
        "augmentation": augmentation,
        "evaluation": evaluation,
        "reproduce": reproduce,
        "tracking": tracking,
    }
    config = resolve_run(run, parameters)
    return export_trained_run(config, training_summary, split_manifest, output_root, export)
