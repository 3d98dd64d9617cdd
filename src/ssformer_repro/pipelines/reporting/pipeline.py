"""The reporting pipeline: one node per table or figure, over every run of the grid."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from ssformer_repro.pipelines.training.pipeline import grid_run_names
from ssformer_repro.project_config import project_parameters

from . import nodes


def run_key(run_name: str) -> str:
    """A run's name as a Python keyword (``kvasir.mit_b0.pld`` -> ``kvasir__mit_b0__pld``)."""
    return run_name.replace(".", "__")


def create_pipeline(**kwargs) -> Pipeline:
    """Tables and figures of the study from the grid's test metrics and training histories."""
    runs = [run_key(name) for name in grid_run_names(project_parameters()["reproduce"])]
    test_metrics = {key: f"{key}_test_metrics" for key in runs}
    histories = {key: f"{key}_history" for key in runs}
    template = Pipeline(
        [
            Node(nodes.collect_runs, test_metrics, "study_runs", name="collect_runs"),
            Node(
                nodes.tabulate_results,
                "study_runs",
                ["results_table", "results_table_markdown", "results_table_latex", "study_metrics"],
                name="tabulate_results",
            ),
            Node(
                nodes.compare_with_published,
                "study_runs",
                ["published_comparison", "published_comparison_markdown"],
                name="compare_with_published",
            ),
            Node(
                nodes.tabulate_toolbox_metrics,
                test_metrics,
                ["toolbox_table", "toolbox_table_markdown"],
                name="tabulate_toolbox_metrics",
            ),
            Node(
                nodes.tabulate_model_sizes,
                "params:model_sizes",
                ["model_sizes", "model_sizes_markdown"],
                name="tabulate_model_sizes",
            ),
            Node(
                nodes.plot_study_figures,
                {"runs": "study_runs", **histories},
                ["training_curves", "mdice_bars"],
                name="plot_study_figures",
            ),
        ]
    )
    # Each run's outputs live in that run's namespace: "<dataset>.<backbone>.<head>.<output>".
    external = {
        f"{key}_{output}": f"{key.replace('__', '.')}.{output}"
        for key in runs
        for output in ("test_metrics", "history")
    }
    return Pipeline(
        template,
        namespace="reporting",
        inputs=external,
        parameters={"params:model_sizes": "params:model_sizes"},
    )
