"""The data_processing pipeline: one namespaced copy per dataset selected in parameters."""

from __future__ import annotations

from functools import partial, update_wrapper

from kedro.pipeline import Node, Pipeline

from ssformer_repro.config.loader import pipeline_parameters

from .nodes import (
    build_decoded_cache,
    discover_raw_pairs,
    fix_size_strata,
    generate_synthetic_dataset,
    measure_images,
    plot_augmentation_preview,
    split_dataset,
    summarise_dataset,
)

RAW_SOURCES = {
    "files": discover_raw_pairs,
    "synthetic": generate_synthetic_dataset,
}


def dataset_pipeline(name: str, source: str) -> Pipeline:
    """Raw files of dataset ``name`` to its split manifest, cache, summary and preview."""
    if source not in RAW_SOURCES:
        raise ValueError(
            f"datasets.{name}.source is {source!r}; valid sources: {sorted(RAW_SOURCES)}"
        )
    summarise = update_wrapper(partial(summarise_dataset, dataset_name=name), summarise_dataset)
    template = Pipeline(
        [
            Node(RAW_SOURCES[source], "params:dataset", "raw_pairs", name="ingest_raw_dataset"),
            Node(
                measure_images,
                ["raw_pairs", "params:data_processing"],
                "image_stats",
                name="measure_images",
            ),
            Node(
                split_dataset,
                ["raw_pairs", "params:dataset"],
                "split_manifest",
                name="split_dataset",
            ),
            Node(
                summarise,
                ["image_stats", "split_manifest"],
                ["summary", "overview"],
                name="summarise_dataset",
            ),
            Node(
                fix_size_strata,
                ["image_stats", "split_manifest"],
                "size_strata",
                name="fix_size_strata",
            ),
            Node(
                build_decoded_cache,
                ["split_manifest", "params:data_processing"],
                "decoded_cache",
                name="build_decoded_cache",
            ),
            Node(
                plot_augmentation_preview,
                ["decoded_cache", "params:augmentation", "params:data_processing"],
                "augmentation_preview",
                name="plot_augmentation_preview",
            ),
        ]
    )
    return Pipeline(
        template,
        namespace=name,
        parameters={
            "params:dataset": f"params:datasets.{name}",
            "params:data_processing": "params:data_processing",
            "params:augmentation": "params:augmentation",
        },
    )


def create_pipeline(parameters: dict | None = None, **kwargs) -> Pipeline:
    """One dataset pipeline per name in ``data_processing.datasets`` (of the session's parameters)."""
    parameters = parameters or pipeline_parameters()
    known = parameters["datasets"]
    selected = parameters["data_processing"]["datasets"]
    unknown = [name for name in selected if name not in known]
    if unknown:
        raise ValueError(
            f"data_processing.datasets names {unknown}, not described under `datasets:`; "
            f"known datasets: {sorted(known)}"
        )
    from ssformer_repro.polyps.settings import DatasetSettings

    default = DatasetSettings.model_fields["source"].default  # the parameters are not checked yet
    return sum(
        (dataset_pipeline(name, known[name].get("source", default)) for name in selected),
        Pipeline([]),
    )
