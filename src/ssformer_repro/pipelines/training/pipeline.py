"""The training pipeline: one namespaced train + evaluate pipeline per run of the grid."""

from __future__ import annotations

from functools import partial, update_wrapper
from itertools import product

from kedro.pipeline import Node, Pipeline

from ssformer_repro.project_config import project_parameters

from . import nodes

SHARED_PARAMETERS = [
    "training",
    "model",
    "evaluation",
    "augmentation",
    "paths",
    "reproduce",
    "tracking",
]


def _bind_run(func, run: dict[str, str]):
    """``func`` with this run's identity bound, keeping its name and docstring for kedro-viz."""
    return update_wrapper(partial(func, run=run), func)


def run_pipeline(dataset: str, backbone: str, head: str) -> Pipeline:
    """Train ``backbone`` x ``head`` on ``dataset``, then score it on the dataset's test split."""
    run = {"dataset": dataset, "backbone": backbone, "head": head}
    run["name"] = f"{dataset}.{backbone}.{head}"
    template = Pipeline(
        [
            Node(
                _bind_run(nodes.train_run, run),
                inputs={
                    "decoded_cache": "decoded_cache",
                    "training": "params:training",
                    "augmentation": "params:augmentation",
                    "model": "params:model",
                    "paths": "params:paths",
                    "reproduce": "params:reproduce",
                    "tracking": "params:tracking",
                },
                outputs=["training_summary", "history"],
                name="train",
            ),
            Node(
                _bind_run(nodes.evaluate_run, run),
                inputs={
                    "split_manifest": "split_manifest",
                    "training_summary": "training_summary",
                    "augmentation": "params:augmentation",
                    "model": "params:model",
                    "evaluation": "params:evaluation",
                    "reproduce": "params:reproduce",
                    "tracking": "params:tracking",
                },
                outputs=["test_scores", "test_metrics", "prediction_examples"],
                name="evaluate",
            ),
        ]
    )
    return Pipeline(
        template,
        namespace=run["name"],
        inputs={
            "decoded_cache": f"{dataset}.decoded_cache",
            "split_manifest": f"{dataset}.split_manifest",
        },
        parameters={f"params:{name}": f"params:{name}" for name in SHARED_PARAMETERS},
    )


def grid_runs(grid: dict) -> list[tuple[str, str, str]]:
    """Every (dataset, backbone, head) of the grid, in a stable order."""
    return list(product(grid["datasets"], grid["backbones"], grid["heads"]))


def grid_run_names(grid: dict) -> list[str]:
    """Every run's namespace, ``<dataset>.<backbone>.<head>``."""
    return [".".join(run) for run in grid_runs(grid)]


def create_pipeline(**kwargs) -> Pipeline:
    """The whole grid of ``reproduce``: datasets x backbones x heads."""
    grid = project_parameters()["reproduce"]
    return sum((run_pipeline(*run) for run in grid_runs(grid)), Pipeline([]))
