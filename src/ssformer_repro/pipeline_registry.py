"""Project pipelines."""

from __future__ import annotations

from kedro.pipeline import Pipeline

from ssformer_repro.config.loader import pipeline_parameters
from ssformer_repro.pipelines import data_processing, export, predict, reporting, training


def register_pipelines(parameters: dict | None = None) -> dict[str, Pipeline]:
    """The study's pipelines, ``reproduce`` (all of them, end to end) as the default, and the
    pipelines that use a trained run (predict, export).

    They are built from `parameters`, by default those of the Kedro session (config/loader.py).
    """
    parameters = parameters or pipeline_parameters()
    pipelines = {
        "data_processing": data_processing.create_pipeline(parameters),
        "training": training.create_pipeline(parameters),
        "reporting": reporting.create_pipeline(parameters),
    }
    pipelines["reproduce"] = sum(pipelines.values(), Pipeline([]))
    pipelines["__default__"] = pipelines["reproduce"]
    # Using a trained run, on demand: `--pipelines=predict` / `--pipelines=export`.
    pipelines["predict"] = predict.create_pipeline(parameters)
    pipelines["export"] = export.create_pipeline(parameters)
    return pipelines
