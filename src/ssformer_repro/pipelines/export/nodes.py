"""Node of the export pipeline: a run's best checkpoint to ONNX and to MLflow."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from ssformer_repro.grid.runs import GridRun


def export_run(
    parameters: dict[str, Any],
    training_summary: dict[str, Any],
    split_manifest: pd.DataFrame,
    output_root: Path,
) -> dict[str, Any]:
    """`<output_root>/<run>/model.onnx` of the run `export.run`, checked against PyTorch, and
    the MLflow model."""
    from ssformer_repro.config.checks import checked_run
    from ssformer_repro.inference.export import export_trained_run
    from ssformer_repro.inference.settings import ExportSettings

    export = ExportSettings.model_validate(parameters.get("export") or {})
    config = checked_run(GridRun.parse(export.run), parameters, devices=(), weights=False)
    return export_trained_run(config, training_summary, split_manifest, output_root, export)
