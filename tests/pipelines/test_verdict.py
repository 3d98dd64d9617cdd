"""The verdict end to end in a copy of the project: a grid of 2 seeds, and a dataset split into
3 cross-validation folds, through `kedro run`, the grid's run list and MLflow."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml

from tests.conftest import copy_project, kedro

pytestmark = pytest.mark.slow  # Kedro runs end to end


def grid_env(split: dict, seeds: list[int], n_images: int) -> dict:
    """A tiny study: one synthetic Kvasir-like dataset, MiT-B0, PLD vs SeD, one epoch."""
    return {
        "parameters_data_processing": {
            "data_processing": {"datasets": ["synth"], "cache_size": 64},
            "datasets": {
                "synth": {
                    "source": "synthetic",
                    "layout": "kvasir",
                    "root": "${globals:data_root}/01_raw/synth",
                    "synthetic": {"n_images": n_images, "seed": 5, "min_size": 64, "max_size": 64},
                    "split": split,
                }
            },
            "augmentation": {"image_size": 32},
        },
        "parameters_reproduce": {
            "reproduce": {
                "datasets": ["synth"],
                "backbones": ["mit_b0"],
                "heads": ["pld", "sed"],
                "seeds": seeds,
            }
        },
        "parameters_training": {
            "training": {"epochs": 1, "batch_size": 4, "num_workers": 0, "device": "cpu"},
            "model": {"pretrained": None},
            "evaluation": {"batch_size": 8, "num_workers": 0},
        },
        "parameters_reporting": {
            "model_sizes": {"image_size": 32},
            "statistics": {"bootstrap_samples": 200},
        },
    }


def run_env(project: Path, env: str, content: dict) -> Path:
    """Write conf/<env> (its data under data/<env>), run `reproduce` in it; its data root."""
    folder = project / "conf" / env
    folder.mkdir()
    (folder / "globals.yml").write_text(f"data_root: data/{env}\n")
    for name, blocks in content.items():
        (folder / f"{name}.yml").write_text(yaml.safe_dump(blocks, sort_keys=False))
    kedro(project, "run", f"--env={env}", "--pipelines=reproduce")
    return project / "data" / env


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_project(tmp_path_factory.mktemp("verdict"))


@pytest.fixture(scope="module")
def seeds(project: Path) -> Path:
    split = {"strategy": "random", "seed": 42, "val_fraction": 0.2, "test_fraction": 0.4}
    return run_env(project, "seeds", grid_env(split, seeds=[1, 2], n_images=20))


@pytest.fixture(scope="module")
def folds(project: Path) -> Path:
    split = {"strategy": "kfold", "folds": 3, "seed": 0, "val_fraction": 0.2}
    return run_env(project, "folds", grid_env(split, seeds=[7], n_images=15))


def test_each_seed_is_a_run_with_its_own_folder_and_mlflow_child(
    project: Path, seeds: Path
) -> None:
    runs = [f"synth.mit_b0.{head}.seed{seed}" for head in ("pld", "sed") for seed in (1, 2)]
    for run in runs:
        assert (seeds / "07_model_output" / run / "test_scores.csv").is_file()
    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    children = mlflow.search_runs(
        search_all_experiments=True, filter_string="tags.ssformer.seed = '2'"
    )
    assert sorted(children["tags.ssformer.run"]) == [runs[1], runs[3]]
    assert set(children["params.seed"]) == {"2"}


def test_the_verdict_pairs_the_heads_over_seeds(seeds: Path) -> None:
    verdict = pd.read_csv(seeds / "08_reporting/verdict.csv", keep_default_na=False)
    assert list(verdict["backbone"]) == ["mit_b0"]  # one backbone: no Total repeating it
    row = verdict.iloc[0]
    assert row["comparison"] == "pld vs sed"
    assert (row["n_images"], row["n_seeds_A"], row["n_seeds_B"]) == (8, 2, 2)  # 40 % of 20
    assert len(row["mdice_A_per_seed"].split(", ")) == 2
    assert float(row["ci_low"]) <= float(row["difference"]) <= float(row["ci_high"])
    assert row["verdict"] in {
        "`pld` better",
        "`sed` better",
        "equivalent within ±1",
        "inconclusive",
    }
    assert 0 <= float(row["p_a_beats_b"]) <= 1
    power = pd.read_csv(seeds / "08_reporting/power.csv")
    assert list(power["difference_of"]) == ["set"] and power.loc[0, "seeds_now"] == 2
    assert power.loc[0, "hours_per_training"] > 0  # from the runs' histories
    image_scores = pd.read_csv(seeds / "08_reporting/image_scores.csv")
    assert len(image_scores) == 2 * 2 * 8
    markdown = (seeds / "08_reporting/verdict.md").read_text()
    assert "PLD (official)" in markdown and "Welch-Satterthwaite" in markdown and "Holm" in markdown
    assert "What it would take" in markdown
    assert "\\begin{tabular}" in (seeds / "08_reporting/verdict.tex").read_text()
    assert (seeds / "08_reporting/forest_plot.png").stat().st_size > 10_000


def test_every_image_is_tested_once_over_the_folds(folds: Path) -> None:
    manifest = pd.read_csv(folds / "05_model_input/synth_split.csv", dtype=str)
    assert sorted(manifest["fold"].value_counts()) == [5, 5, 5]
    image_scores = pd.read_csv(folds / "08_reporting/image_scores.csv", dtype={"id": str})
    for head in ("pld", "sed"):
        of_head = image_scores[image_scores["head"] == head]
        assert sorted(of_head["id"]) == sorted(manifest["id"])  # each id once, every id
        assert sorted(of_head["fold"].value_counts()) == [5, 5, 5]
    run = folds / "07_model_output/synth.mit_b0.pld.seed7"
    assert sorted(path.name for path in run.iterdir() if path.is_dir()) == [
        "fold0",
        "fold1",
        "fold2",
    ]
    verdict = pd.read_csv(folds / "08_reporting/verdict.csv")
    assert verdict.loc[0, "n_images"] == 15  # the whole dataset, paired


def test_the_grid_lists_the_fold_runs(project: Path, folds: Path) -> None:
    listed = subprocess.run(
        [sys.executable, "-m", "ssformer_repro.grid", "list", "--env=folds"],
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert listed == [
        f"synth.mit_b0.{head}.seed7.fold{fold}" for head in ("pld", "sed") for fold in range(3)
    ]
