"""The export pipeline: one node that exports `export.run`'s best checkpoint."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from ssformer_repro.config.loader import pipeline_parameters
from ssformer_repro.grid.runs import GridRun

from .nodes import export_run


def create_pipeline(parameters: dict | None = None, **kwargs) -> Pipeline:
    """Export `export.run` (its summary and checkpoint, its dataset's manifest for the check)."""
    export = (parameters or pipeline_parameters()).get("export") or {}
    try:
        run = GridRun.parse(export.get("run") or "")
    except ValueError:
        return Pipeline([])  # the configuration check names the missing or malformed run
    return Pipeline(
        [
            Node(
                export_run,
                inputs={
                    "parameters": "parameters",
                    "training_summary": f"{run.namespace}.training_summary",
                    "split_manifest": f"{run.dataset}.split_manifest",
                    "output_root": "export.output_root",
                },
                outputs="export.report",
                name="export_run",
            )
        ]
    )
