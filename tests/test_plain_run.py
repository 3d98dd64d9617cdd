"""The benchmark's baseline runs a pipeline's nodes in order without Kedro's session or runner."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from kedro.io import DataCatalog
from kedro.pipeline import Pipeline, node

from ssformer_repro.benchmark.plain_run import parse_params, run_nodes


def test_params_are_read_like_kedros_params_option() -> None:
    assert parse_params("training.epochs=15,paths.models=/tmp/m,training.lr=1.0e-3") == {
        "training": {"epochs": 15, "lr": 1e-3},
        "paths": {"models": "/tmp/m"},
    }
    assert parse_params(None) == {}


def test_nodes_run_in_order_on_catalog_parameters_and_memory(tmp_path: Path) -> None:
    catalog = DataCatalog.from_config(
        {
            "table": {"type": "pandas.CSVDataset", "filepath": str(tmp_path / "table.csv")},
            "scaled": {"type": "pandas.CSVDataset", "filepath": str(tmp_path / "scaled.csv")},
        }
    )
    catalog.save("table", pd.DataFrame({"x": [1, 2]}))
    pipeline = Pipeline(
        [  # listed out of order: Kedro sorts them by their inputs and outputs
            node(
                lambda doubled, factor: doubled * factor,
                ["doubled", "params:scale.factor"],
                "scaled",
                name="scale",
            ),
            node(lambda table: table * 2, "table", "doubled", name="double"),
        ]
    )

    run_nodes(pipeline, catalog, {"scale": {"factor": 10}})

    assert pd.read_csv(tmp_path / "scaled.csv")["x"].tolist() == [20, 40]
    assert not (tmp_path / "doubled.csv").exists()  # an intermediate kept in memory
