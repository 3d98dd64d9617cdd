"""A researcher's loop, through `kedro run`: change a setting, re-run, and exactly what changed
is redone (docs/reliability.md, "Re-running"); a run is selected alone or as part of the grid."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import torch

from tests.conftest import copy_project, edit_yaml, kedro, shrink_demo

pytestmark = pytest.mark.slow  # Kedro runs end to end

RUN = "synth_kvasir.mit_b0.pld.seed42"
TRAIN = ["run", "--env=demo", "--pipelines=training", f"--namespaces={RUN}"]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-dataset, one-run demo whose data is processed."""
    project = copy_project(tmp_path_factory.mktemp("rerun"))
    shrink_demo(project, heads=1)
    kedro(project, "run", "--env=demo", "--pipelines=data_processing")
    return project


def run_folder(project: Path) -> Path:
    return project / "data/demo/06_models" / RUN


def history(project: Path) -> pd.DataFrame:
    """The run's history table, as the catalog writes it from the train node."""
    return pd.read_csv(project / "data/demo/07_model_output" / RUN / "history.csv")


def output(result) -> str:
    return result.stdout + result.stderr


def children(project: Path) -> list:
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("ssformer-repro")
    runs = client.search_runs([experiment.experiment_id])
    return [run for run in runs if run.info.run_name == RUN]


def test_a_finished_run_is_not_retrained_rescored_redrawn_or_logged_again(project: Path) -> None:
    kedro(project, *TRAIN)
    scores = (project / f"data/demo/07_model_output/{RUN}/test_scores.csv").read_bytes()
    figure = project / f"data/demo/08_reporting/predictions/{RUN}/test_predictions.png"
    drawn = figure.read_bytes()
    again = kedro(project, *TRAIN)
    log = output(again)
    assert "already trained for 1 epochs; nothing to do" in log
    assert "test split already scored from this checkpoint" in log
    assert "test examples already drawn from this checkpoint" in log
    assert (project / f"data/demo/07_model_output/{RUN}/test_scores.csv").read_bytes() == scores
    assert figure.read_bytes() == drawn and drawn.startswith(b"\x89PNG")
    (child,) = children(project)  # one MLflow run per model, not one per `kedro run`
    assert "test_mdice" in child.data.metrics
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    logged = client.download_artifacts(child.info.run_id, "test_predictions.png", str(project))
    assert Path(logged).read_bytes() == drawn


def test_outputs_follow_the_umask_for_readers_on_a_shared_disk(project: Path) -> None:
    for name in ("last.pt", "last.json", "best.pt"):
        mode = stat.S_IMODE((run_folder(project) / name).stat().st_mode)
        assert mode == 0o666 & ~current_umask(), f"{name}: {oct(mode)}"
    cache = project / "data/demo/05_model_input/synth_kvasir_cache"
    assert stat.S_IMODE(cache.stat().st_mode) == 0o777 & ~current_umask()


def current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_switching_a_choice_the_kedro_way_replaces_its_options(project: Path) -> None:
    # base's `poly` options would be kept by Kedro's soft merge and refused by `warmup_step`.
    result = kedro(
        project,
        *TRAIN,
        "--params=training.scheduler.name=warmup_step,training.on_changed_settings=restart",
    )
    assert "scheduler" in output(result) and "superseded" in output(result)
    last = torch.load(run_folder(project) / "last.pt", weights_only=True)
    assert last["config"]["scheduler"] == {
        "name": "warmup_step",
        "warmup_epochs": 1,
        "step_size": 200,
        "gamma": 0.1,
    }


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ("augmentation.rotate.p=0.25", "augmentation.rotate.p: 0.5 -> 0.25"),
        ("model.head_options.pld.fusion=add", "model.head_options.fusion: 'cat' -> 'add'"),
        ("model.pretrained.mit_b0=pvt_v2_b0.in1k", "model.pretrained: None -> 'pvt_v2_b0.in1k'"),
    ],
)
def test_a_changed_input_is_refused_naming_it(project: Path, params: str, named: str) -> None:
    last_before = (run_folder(project) / "last.pt").read_bytes()
    result = kedro(project, *TRAIN, f"--params={params}", check=False)
    assert result.returncode != 0
    assert named in output(result) and "on_changed_settings: restart" in output(result)
    assert "size mismatch" not in output(result)
    assert "Traceback" not in output(result)  # a user's error: its message alone (cli.py)
    assert (run_folder(project) / "last.pt").read_bytes() == last_before


def test_a_changed_input_restarts_under_restart_with_the_old_run_kept(project: Path) -> None:
    before = set((run_folder(project) / "superseded").glob("*"))
    kedro(
        project,
        *TRAIN,
        "--params=model.head_options.pld.fusion=add,training.on_changed_settings=restart",
    )
    after = set((run_folder(project) / "superseded").glob("*"))
    assert len(after - before) == 1
    last = torch.load(run_folder(project) / "last.pt", weights_only=True)
    assert last["fingerprint"]["model"]["head_options"]["fusion"] == "add"


def test_more_epochs_resume_where_the_run_stopped(project: Path) -> None:
    params = "model.head_options.pld.fusion=add,training.epochs=2"
    result = kedro(project, *TRAIN, f"--params={params}")
    assert "resuming from" in output(result) and "after epoch 1" in output(result)
    assert list(history(project)["epoch"]) == [1, 2]


def test_a_run_trained_past_its_epochs_is_refused_before_any_work(project: Path) -> None:
    # The run now holds 2 epochs (the test above): the plain command asks for 1 again.
    last_before = (run_folder(project) / "last.pt").read_bytes()
    result = kedro(project, *TRAIN, "--params=model.head_options.pld.fusion=add", check=False)
    log = output(result)
    assert result.returncode != 0
    assert "last.pt holds 2 epochs, more than training.epochs=1" in log
    assert "training.epochs=2" in log and "on_changed_settings: restart" in log
    assert "nothing was run" in log and "Running node" not in log and "Traceback" not in log
    assert (run_folder(project) / "last.pt").read_bytes() == last_before

    # Under `restart` (what DVC passes) the longer run moves aside and 1 epoch trains afresh.
    superseded = set((run_folder(project) / "superseded").glob("*"))
    params = "model.head_options.pld.fusion=add,training.on_changed_settings=restart"
    kedro(project, *TRAIN, f"--params={params}")
    assert len(set((run_folder(project) / "superseded").glob("*")) - superseded) == 1
    assert list(history(project)["epoch"]) == [1]


def test_one_datasets_data_processing_alone(tmp_path: Path) -> None:
    project = copy_project(tmp_path)
    runs = shrink_demo(project, heads=2)
    edit_yaml(
        project / "conf/demo/parameters_data_processing.yml",
        lambda p: p["data_processing"].update(datasets=["synth_kvasir", "synth_clinicdb"]),
    )
    edit_yaml(
        project / "conf/demo/parameters_data_processing.yml",
        lambda p: p["datasets"]["synth_clinicdb"]["synthetic"].update(n_images=20),
    )
    kedro(project, "run", "--env=demo", "--pipelines=data_processing", "--namespaces=synth_kvasir")
    data = project / "data/demo"
    assert (data / "05_model_input/synth_kvasir_split.csv").is_file()
    assert not (data / "05_model_input/synth_clinicdb_split.csv").exists()
    assert not (data / "06_models").exists() and runs


def test_a_subset_of_the_grid_from_the_command_line(tmp_path: Path) -> None:
    project = copy_project(tmp_path)
    shrink_demo(project, heads=3)
    only = "--params=reproduce.only=synth_kvasir.*.sed synth_kvasir.mit_b0.pld"
    kedro(project, "run", "--env=demo", "--pipelines=reproduce", only)
    trained = sorted(path.name for path in (project / "data/demo/06_models").iterdir())
    assert trained == ["synth_kvasir.mit_b0.pld.seed42", "synth_kvasir.mit_b0.sed.seed42"]
    runs = pd.read_csv(project / "data/demo/08_reporting/runs.csv")
    assert sorted(runs["head"]) == ["pld", "sed"]  # the tables cover the narrowed grid
    listed = json.loads((project / "data/demo/08_reporting/metrics.json").read_text())
    assert set(listed["synth_kvasir"]["mit_b0"]) == {"pld", "sed"}
