"""The reporting pipeline: one node per table or figure, over every run of the grid."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from ssformer_repro.config.loader import pipeline_parameters
from ssformer_repro.grid.runs import grid_runs

from . import nodes


def create_pipeline(parameters: dict | None = None, **kwargs) -> Pipeline:
    """Tables and figures of the study from the grid's test metrics and training histories."""
    runs = grid_runs((parameters or pipeline_parameters())["reproduce"])
    # Node arguments keyed by run name; outside the namespace they are the runs' own datasets.
    test_metrics = {run.name: f"{run.namespace}.test_metrics" for run in runs}
    histories = {run.name: f"{run.namespace}.history" for run in runs}
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
    return Pipeline(
        template,
        namespace="reporting",
        inputs=set(test_metrics.values()) | set(histories.values()),
        parameters={"params:model_sizes": "params:model_sizes"},
    )
