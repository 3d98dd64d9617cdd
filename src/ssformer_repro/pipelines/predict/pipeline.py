"""The predict pipeline: one node that segments a folder of frames with a trained run.

`predict.run` names a run of the grid, whose checkpoint folder is its catalog `run_folder`;
`predict.checkpoint` names a `best.pt` file instead (its run name says the architecture).
"""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from ssformer_repro.config.loader import pipeline_parameters
from ssformer_repro.grid.runs import GridRun

from .nodes import segment_frames


def create_pipeline(parameters: dict | None = None, **kwargs) -> Pipeline:
    """Segment `predict.input` with `predict.run` (or `predict.checkpoint`)."""
    predict = (parameters or pipeline_parameters()).get("predict") or {}
    inputs = {"parameters": "parameters", "output_root": "predict.output_root"}
    run = _run_or_none(predict.get("run"))
    if run is not None:
        inputs["run_folder"] = f"{run.namespace}.run_folder"
    return Pipeline([Node(segment_frames, inputs, "predict.predictions", name="segment_frames")])


def _run_or_none(name: str | None) -> GridRun | None:
    """The run `name` names; None (the node then explains what is wrong) when it is not one."""
    try:
        return GridRun.parse(name) if name else None
    except ValueError:
        return None
