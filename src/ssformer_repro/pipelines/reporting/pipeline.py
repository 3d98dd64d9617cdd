"""The reporting pipeline: one node per table or figure, over every run of the grid."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from ssformer_repro.config.loader import pipeline_parameters
from ssformer_repro.grid.runs import parameter_grid

from .nodes import (
    collect_image_scores,
    collect_runs,
    collect_test_sets,
    compare_with_published,
    plan_seeds,
    plot_nsd_gallery,
    plot_study_figures,
    plot_verdict,
    plot_where_heads_differ,
    tabulate_model_sizes,
    tabulate_results,
    tabulate_test_sets,
    tabulate_toolbox_metrics,
    tabulate_verdict,
    tabulate_where_heads_differ,
    write_verdict,
)


def create_pipeline(parameters: dict | None = None, **kwargs) -> Pipeline:
    """Tables and figures of the study from the grid's test metrics and training histories."""
    runs = parameter_grid(parameters or pipeline_parameters())
    # Node arguments keyed by run name, read from inputs named in the template `<output>_<i>`
    # and mapped below to each run's own datasets, "<run namespace>.<output>".
    test_metrics = {run.name: f"test_metrics_{index}" for index, run in enumerate(runs)}
    test_scores = {run.name: f"test_scores_{index}" for index, run in enumerate(runs)}
    histories = {run.name: f"history_{index}" for index, run in enumerate(runs)}
    summaries = {run.name: f"training_summary_{index}" for index, run in enumerate(runs)}
    datasets = list(dict.fromkeys(run.dataset for run in runs))
    manifests = {
        f"manifest__{dataset}": f"split_manifest_{i}" for i, dataset in enumerate(datasets)
    }
    external = {
        f"{output}_{index}": f"{run.namespace}.{output}"
        for index, run in enumerate(runs)
        for output in ("test_metrics", "test_scores", "history", "training_summary")
    } | {f"split_manifest_{i}": f"{dataset}.split_manifest" for i, dataset in enumerate(datasets)}
    template = Pipeline(
        [
            Node(collect_runs, test_metrics, "study_runs", name="collect_runs"),
            Node(collect_image_scores, test_scores, "image_scores", name="collect_image_scores"),
            Node(
                tabulate_verdict,
                ["image_scores", "params:statistics", "params:evaluation"],
                "verdict",
                name="tabulate_verdict",
            ),
            Node(
                plan_seeds,
                {"image_scores": "image_scores", "statistics": "params:statistics", **histories},
                ["power", "power_markdown"],
                name="plan_seeds",
            ),
            Node(
                write_verdict,
                ["verdict", "power", "params:statistics"],
                ["verdict_markdown", "verdict_latex"],
                name="write_verdict",
            ),
            Node(plot_verdict, "verdict", "forest_plot", name="plot_verdict"),
            Node(
                tabulate_where_heads_differ,
                ["image_scores", "params:statistics", "params:evaluation"],
                ["where_heads_differ", "where_heads_differ_markdown", "where_heads_differ_latex"],
                name="tabulate_where_heads_differ",
            ),
            Node(
                plot_where_heads_differ,
                "where_heads_differ",
                "where_heads_differ_plot",
                name="plot_where_heads_differ",
            ),
            Node(
                plot_nsd_gallery,
                {
                    "image_scores": "image_scores",
                    "parameters": "parameters",
                    "folder": "records_folder",
                    **manifests,
                    **summaries,
                },
                "nsd_gallery",
                name="plot_nsd_gallery",
            ),
            Node(collect_test_sets, test_metrics, "study_test_sets", name="collect_test_sets"),
            Node(
                tabulate_test_sets,
                "study_test_sets",
                ["test_set_table", "test_set_table_markdown", "test_set_table_latex"],
                name="tabulate_test_sets",
            ),
            Node(
                tabulate_results,
                "study_runs",
                ["results_table", "results_table_markdown", "results_table_latex", "study_metrics"],
                name="tabulate_results",
            ),
            Node(
                compare_with_published,
                "study_test_sets",
                ["published_comparison", "published_comparison_markdown"],
                name="compare_with_published",
            ),
            Node(
                tabulate_toolbox_metrics,
                test_metrics,
                ["toolbox_table", "toolbox_table_markdown"],
                name="tabulate_toolbox_metrics",
            ),
            Node(
                tabulate_model_sizes,
                ["study_runs", "params:model_sizes", "records_folder"],
                ["model_sizes", "model_sizes_markdown"],
                name="tabulate_model_sizes",
            ),
            Node(
                plot_study_figures,
                {"runs": "study_runs", **histories},
                ["training_curves", "mdice_bars"],
                name="plot_study_figures",
            ),
        ]
    )
    return Pipeline(
        template,
        namespace="reporting",
        inputs=external,
        parameters={
            "params:model_sizes": "params:model_sizes",
            "params:statistics": "params:statistics",
            "params:evaluation": "params:evaluation",
        },
    )
