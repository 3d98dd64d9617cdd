"""Project pipelines."""

from __future__ import annotations

from kedro.pipeline import Pipeline

from ssformer_repro.pipelines import data_processing, reporting, training


def register_pipelines() -> dict[str, Pipeline]:
    """The study's pipelines, and ``reproduce`` (all of them, end to end) as the default."""
    pipelines = {
        "data_processing": data_processing.create_pipeline(),
        "training": training.create_pipeline(),
        "reporting": reporting.create_pipeline(),
    }
    pipelines["reproduce"] = sum(pipelines.values(), Pipeline([]))
    pipelines["__default__"] = pipelines["reproduce"]
    return pipelines
