"""The demo `reproduce` pipeline end to end in a copy of the project: tables, runs, MLflow."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pandas as pd
import pytest

pytestmark = pytest.mark.slow  # Kedro/DVC/browser runs end to end

DEMO_RUNS = [
    f"{dataset}.mit_b0.{head}.seed{seed}"
    for dataset in ("synth_kvasir", "synth_clinicdb")
    for head in ("pld", "sed")
    for seed in (42, 43, 44)
]


def test_every_grid_run_is_trained_and_evaluated(reproduced: Path) -> None:
    for run in DEMO_RUNS:
        run_dir = reproduced / "data/demo/06_models" / run
        assert (run_dir / "best.pt").is_file() and (run_dir / "last.pt").is_file()
        outputs = reproduced / "data/demo/07_model_output" / run
        history = pd.read_csv(outputs / "history.csv")
        assert list(history["epoch"]) == [1, 2]
        metrics = json.loads((outputs / "test_metrics.json").read_text())
        assert metrics["name"] == run and 0.0 <= metrics["mdice"] <= 1.0
        assert 0.0 <= metrics["mnsd"] <= 1.0 and metrics["hd95_undefined"] >= 0
        scores = pd.read_csv(
            outputs / "test_scores.csv", keep_default_na=False, na_values={"hd95": [""]}
        )
        assert scores["nsd"].between(0, 1).all()
        assert set(scores["size_stratum"]) <= {"small", "medium", "large", "none"}
        assert scores["hd95"].isna().sum() == metrics["hd95_undefined"]
        assert (
            reproduced / f"data/demo/08_reporting/predictions/{run}/test_predictions.png"
        ).is_file()


def test_study_tables_and_figures_are_written(reproduced: Path) -> None:
    reporting = reproduced / "data/demo/08_reporting"
    table = pd.read_csv(reporting / "results_table.csv")
    assert set(table["dataset"]) == {"synth_kvasir", "synth_clinicdb"}
    assert {"pld", "sed", "winner pld vs sed"} <= set(table.columns)
    assert "averaged over images" in (reporting / "results_table.md").read_text()
    assert {"mNSD", "mHD95 (% of diagonal)", "HD95 undefined (images)"} <= set(table["metric"])
    assert "normalised surface Dice" in (reporting / "results_table.md").read_text()
    strata = json.loads(
        (reproduced / "data/demo/05_model_input/synth_kvasir_size_strata.json").read_text()
    )
    assert 0 < strata["small_below"] <= strata["large_from"] < 1
    image_scores = pd.read_csv(reporting / "image_scores.csv")
    assert {"nsd", "hd95", "empty_mask", "size_stratum", "n_polyps", "count_stratum"} <= set(
        image_scores.columns
    )
    assert {"mnsd", "mhd95", "hd95_undefined"} <= set(
        pd.read_csv(reporting / "toolbox_metrics.csv").columns
    )
    assert "\\begin{tabular}" in (reporting / "results_table.tex").read_text()
    metrics = json.loads((reporting / "metrics.json").read_text())
    assert set(metrics["synth_kvasir"]["mit_b0"]) == {"pld", "sed"}
    verdict = pd.read_csv(reporting / "verdict.csv")
    assert set(verdict["comparison"]) == {"pld vs sed"}
    assert set(verdict["backbone"]) == {"mit_b0"}  # one backbone: no Total repeating it
    assert "Holm" in (reporting / "verdict.md").read_text()
    assert "What it would take" in (reporting / "power.md").read_text()
    where = pd.read_csv(reporting / "where_heads_differ.csv")
    assert set(where["metric"]) == {"Dice", "NSD", "HD95"}
    assert {"all", "small", "medium", "large"} <= set(where["stratum"])
    sizes = pd.read_csv(reporting / "model_sizes.csv")  # the grid's models, no others
    assert list(zip(sizes["backbone"], sizes["head"], strict=True)) == [
        ("mit_b0", "pld"),
        ("mit_b0", "sed"),
    ]
    for name in (
        "forest_plot.png",
        "verdict.tex",
        "power.csv",
        "where_heads_differ.md",
        "where_heads_differ.tex",
        "where_heads_differ.png",
        "nsd_gallery.png",
        "image_scores.csv",
        "training_curves.png",
        "mdice_bars.png",
        "toolbox_metrics.csv",
        "published_comparison.csv",
        "model_sizes.csv",
    ):
        assert (reporting / name).stat().st_size > 0


def test_mlflow_has_one_child_run_per_grid_run(reproduced: Path) -> None:
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{reproduced / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("ssformer-repro")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.data.tags.get("kedro.pipelines") == "reproduce"]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and parents[0].data.tags["kedro.env"] == "demo"
    assert parents[0].info.status == "FINISHED"
    logged = {artifact.path for artifact in client.list_artifacts(parents[0].info.run_id)}
    assert {"forest_plot.png", "verdict.md", "run_times.json"} <= logged
    assert sorted(r.info.run_name for r in children) == sorted(DEMO_RUNS)
    for child in children:
        assert child.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
        assert child.data.params["backbone"] == "mit_b0"
        seed = child.info.run_name.rsplit(".seed", 1)[1]
        assert child.data.params["seed"] == child.data.tags["ssformer.seed"] == seed
        assert child.data.params["git_commit"]  # "unknown" outside a git checkout
        assert "test_mdice" in child.data.metrics and "val_mdice" in child.data.metrics
        history = client.get_metric_history(child.info.run_id, "train_loss")
        assert [m.step for m in history] == [1, 2]
