"""Node of the export pipeline: a run's best checkpoint to ONNX and to MLflow."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from ssformer_repro.grid.runs import GridRun, run_settings


def export_run(
    export: dict[str, Any],
    training_summary: dict[str, Any],
    split_manifest: pd.DataFrame,
    output_root: Path,
    model: dict[str, Any],
    augmentation: dict[str, Any],
    evaluation: dict[str, Any],
    reproduce: dict[str, Any],
    tracking: dict[str, Any],
) -> dict[str, Any]:
    """`<output_root>/<run>/model.onnx`, checked against PyTorch, and the MLflow model."""
    from ssformer_repro.inference.export import export_trained_run

    run = GridRun.parse(export["run"])
    shared = {"model": model, "augmentation": augmentation, "evaluation": evaluation}
    settings = run_settings(run, shared, reproduce)
    return export_trained_run(
        run, settings, training_summary, split_manifest, output_root, export, tracking
    )
