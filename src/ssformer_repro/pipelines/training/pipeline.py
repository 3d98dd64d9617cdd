"""The training pipeline: one namespaced train + evaluate pipeline per run of the grid."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from ssformer_repro.config.loader import pipeline_parameters
from ssformer_repro.grid.runs import GridRun, parameter_grid

from .nodes import evaluate, plot_examples, train


def run_pipeline(run: GridRun) -> Pipeline:
    """Train one run of the grid, then score it on its dataset's test split."""
    template = Pipeline(
        [
            Node(
                train,
                inputs=["run_config", "decoded_cache", "split_manifest", "run_folder"],
                outputs=["training_summary", "history"],
                name="train",
            ),
            Node(
                evaluate,
                inputs=[
                    "run_config",
                    "split_manifest",
                    "size_strata",
                    "training_summary",
                    "run_folder",
                ],
                outputs=["test_scores", "test_metrics"],
                name="evaluate",
            ),
            Node(
                plot_examples,
                inputs=[
                    "run_config",
                    "split_manifest",
                    "test_scores",
                    "training_summary",
                    "run_folder",
                ],
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
    )


def create_pipeline(parameters: dict | None = None, **kwargs) -> Pipeline:
    """The whole grid of ``reproduce``: one run pipeline per run (of the session's parameters)."""
    runs = parameter_grid(parameters or pipeline_parameters())
    return sum((run_pipeline(run) for run in runs), Pipeline([]))
