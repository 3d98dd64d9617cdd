"""The training pipeline: one namespaced train + evaluate pipeline per run of the grid."""

from __future__ import annotations

from functools import partial, update_wrapper

from kedro.pipeline import Node, Pipeline

from ssformer_repro.config.loader import pipeline_parameters
from ssformer_repro.grid.runs import GridRun, parameter_grid

from .nodes import evaluate, plot_examples, train

SHARED_PARAMETERS = ["training", "model", "evaluation", "augmentation", "reproduce", "tracking"]


def _for_run(func, run: GridRun):
    """``func`` with this run bound, keeping its name and docstring for kedro-viz."""
    return update_wrapper(partial(func, run=run), func)


def run_pipeline(run: GridRun) -> Pipeline:
    """Train one run of the grid, then score it on its dataset's test split."""
    template = Pipeline(
        [
            Node(
                _for_run(train, run),
                inputs={
                    "decoded_cache": "decoded_cache",
                    "split_manifest": "split_manifest",
                    "run_folder": "run_folder",
                    "training": "params:training",
                    "model": "params:model",
                    "augmentation": "params:augmentation",
                    "reproduce": "params:reproduce",
                    "tracking": "params:tracking",
                },
                outputs=["training_summary", "history"],
                name="train",
            ),
            Node(
                _for_run(evaluate, run),
                inputs={
                    "split_manifest": "split_manifest",
                    "size_strata": "size_strata",
                    "training_summary": "training_summary",
                    "run_folder": "run_folder",
                    "model": "params:model",
                    "augmentation": "params:augmentation",
                    "evaluation": "params:evaluation",
                    "reproduce": "params:reproduce",
                },
                outputs=["test_scores", "test_metrics"],
                name="evaluate",
            ),
            Node(
                _for_run(plot_examples, run),
                inputs={
                    "split_manifest": "split_manifest",
                    "test_scores": "test_scores",
                    "training_summary": "training_summary",
                    "run_folder": "run_folder",
                    "model": "params:model",
                    "augmentation": "params:augmentation",
                    "evaluation": "params:evaluation",
                    "reproduce": "params:reproduce",
                },
                outputs="prediction_examples",
                name="plot_examples",
            ),
        ]
    )
    return Pipeline(
        template,
        namespace=run.namespace,
        inputs={
            "decoded_cache": f"{run.dataset}.decoded_cache",
            "split_manifest": f"{run.dataset}.split_manifest",
            "size_strata": f"{run.dataset}.size_strata",
        },
        parameters={f"params:{name}": f"params:{name}" for name in SHARED_PARAMETERS},
    )


def create_pipeline(parameters: dict | None = None, **kwargs) -> Pipeline:
    """The whole grid of ``reproduce``: one run pipeline per run (of the session's parameters)."""
    runs = parameter_grid(parameters or pipeline_parameters())
    return sum((run_pipeline(run) for run in runs), Pipeline([]))
