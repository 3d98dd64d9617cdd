"""The per-stage input files DVC depends on: resolved settings, overrides, fingerprints."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from ssformer_repro.config.loader import load_parameters
from ssformer_repro.grid.dvc_inputs import (
    dataset_inputs,
    main,
    run_stage_inputs,
    write_stage_inputs,
)
from ssformer_repro.grid.runs import GridRun
from ssformer_repro.storage.digests import path_digest as fingerprint
from tests.conftest import copy_project


@pytest.fixture
def parameters(tmp_path: Path) -> dict:
    """A two-dataset, one-backbone, two-head grid; `real` reads files under tmp_path."""
    weights = tmp_path / "mit_b0.pth"
    weights.write_bytes(b"weights")
    (tmp_path / "real" / "images").mkdir(parents=True)
    (tmp_path / "real" / "images" / "1.jpg").write_bytes(b"image")
    split = {"strategy": "random", "seed": 42, "val_fraction": 0.1, "test_fraction": 0.1}
    return {
        "datasets": {
            "real": {"source": "files", "layout": "kvasir", "root": str(tmp_path / "real")},
            "synth": {"source": "synthetic", "layout": "kvasir", "root": "nowhere", "split": split},
        },
        "data_processing": {"datasets": ["real", "synth"], "cache_size": 64},
        "augmentation": {"image_size": 64},
        "training": {"epochs": 2, "lr": 0.001},
        "model": {
            "pretrained": {"mit_b0": str(weights)},
            "head_options": {"pld": {"fusion": "cat"}, "sed": {}},
        },
        "evaluation": {"threshold": 0.5},
        "reproduce": {
            "datasets": ["real", "synth"],
            "backbones": ["mit_b0"],
            "heads": ["pld", "sed"],
            "seeds": [42],
            "overrides": {},
        },
    }


def test_fingerprint_follows_contents_and_names(tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "a.txt").write_text("a")
    before = fingerprint(folder)
    assert before == fingerprint(str(folder))
    (folder / "sub" / "a.txt").write_text("b")
    changed_content = fingerprint(folder)
    (folder / "sub" / "a.txt").rename(folder / "sub" / "c.txt")
    assert len({before, changed_content, fingerprint(folder)}) == 3
    assert fingerprint(folder / "sub" / "c.txt") != fingerprint(folder)


@pytest.mark.parametrize("path", [None, "pvt_v2_b0.in1k", "no/such/file.pth"])
def test_fingerprint_of_nothing_on_disk_is_none(path: str | None) -> None:
    assert fingerprint(path) is None


def test_a_runs_override_changes_that_runs_inputs_only(parameters: dict) -> None:
    before = {
        head: run_stage_inputs(parameters, GridRun("real", "mit_b0", head, 42))
        for head in ("pld", "sed")
    }
    parameters["reproduce"]["overrides"] = {"real.mit_b0.sed.seed42": {"training": {"epochs": 5}}}
    after = {
        head: run_stage_inputs(parameters, GridRun("real", "mit_b0", head, 42))
        for head in ("pld", "sed")
    }
    assert after["pld"] == before["pld"]
    assert after["sed"]["training"] == {"epochs": 5, "lr": 0.001, "seed": 42}
    assert before["sed"]["training"] == {"epochs": 2, "lr": 0.001, "seed": 42}


def test_run_inputs_fingerprint_the_backbones_weights(parameters: dict) -> None:
    inputs = run_stage_inputs(parameters, GridRun("real", "mit_b0", "pld", 42))
    assert inputs["pretrained_weights"] == fingerprint(parameters["model"]["pretrained"]["mit_b0"])
    assert inputs["model"] == {
        "pretrained": parameters["model"]["pretrained"]["mit_b0"],
        "head_options": {"fusion": "cat", "dropout": 0.1},
    }
    parameters["model"]["pretrained"] = None
    assert (
        run_stage_inputs(parameters, GridRun("real", "mit_b0", "pld", 42))["pretrained_weights"]
        is None
    )


def test_only_datasets_read_from_files_get_a_raw_fingerprint(parameters: dict) -> None:
    real = dataset_inputs(parameters, "real")
    assert real["raw_files"] == fingerprint(parameters["datasets"]["real"]["root"])
    assert real["dataset"] == parameters["datasets"]["real"]
    assert dataset_inputs(parameters, "synth")["raw_files"] is None
    with pytest.raises(ValueError, match="datasets.missing"):
        dataset_inputs(parameters, "missing")
    # `source` left out is the schema's default, files: they are fingerprinted too
    del parameters["datasets"]["real"]["source"]
    assert dataset_inputs(parameters, "real")["raw_files"] == real["raw_files"]


def test_written_files_cover_the_grid_and_are_stable(parameters: dict, tmp_path: Path) -> None:
    first = write_stage_inputs(parameters, tmp_path / "first")
    second = write_stage_inputs(copy.deepcopy(parameters), tmp_path / "second")
    names = sorted(path.relative_to(tmp_path / "first").as_posix() for path in first)
    assert names == [
        "datasets/real.json",
        "datasets/synth.json",
        "runs/real.mit_b0.pld.seed42.json",
        "runs/real.mit_b0.sed.seed42.json",
        "runs/synth.mit_b0.pld.seed42.json",
        "runs/synth.mit_b0.sed.seed42.json",
    ]
    assert [path.read_bytes() for path in first] == [path.read_bytes() for path in second]
    real_run = json.loads((tmp_path / "first/runs/real.mit_b0.pld.seed42.json").read_text())
    assert real_run["run"] == "real.mit_b0.pld.seed42"
    assert real_run["augmentation"] == parameters["augmentation"]
    # Only what the run's result depends on: no code, no data_processing block, no other head.
    assert set(real_run) == {
        "run",
        "training",
        "model",
        "augmentation",
        "evaluation",
        "pretrained_weights",
    }


def test_a_kfold_runs_stage_file_holds_each_folds_inputs(parameters: dict, tmp_path: Path) -> None:
    parameters["datasets"]["real"]["split"] = {"strategy": "kfold", "folds": 2, "seed": 0}
    parameters["reproduce"]["overrides"] = {
        "real.mit_b0.pld.seed42.fold1": {"training": {"epochs": 9}}
    }
    write_stage_inputs(parameters, tmp_path)
    stage = json.loads((tmp_path / "runs/real.mit_b0.pld.seed42.json").read_text())
    assert stage["run"] == "real.mit_b0.pld.seed42"
    assert [fold["run"] for fold in stage["folds"]] == [
        "real.mit_b0.pld.seed42.fold0",
        "real.mit_b0.pld.seed42.fold1",
    ]
    assert [fold["training"]["epochs"] for fold in stage["folds"]] == [2, 9]  # fold1's override
    assert not (tmp_path / "runs/real.mit_b0.pld.seed42.fold0.json").exists()


def test_a_change_to_another_head_or_backbone_leaves_a_runs_inputs_alone(parameters: dict) -> None:
    before = run_stage_inputs(parameters, GridRun("real", "mit_b0", "sed", 42))
    parameters["model"]["head_options"]["pld"] = {"fusion": "add"}
    parameters["model"]["pretrained"]["mit_b2"] = "elsewhere.pth"
    assert run_stage_inputs(parameters, GridRun("real", "mit_b0", "sed", 42)) == before


def test_a_grid_dataset_that_is_not_processed_is_refused(parameters: dict, tmp_path: Path) -> None:
    parameters["data_processing"]["datasets"] = ["real"]
    with pytest.raises(ValueError, match=r"reproduce.datasets names \['synth'\]"):
        write_stage_inputs(parameters, tmp_path)


def test_command_line_resolves_the_demo_environment(tmp_path: Path) -> None:
    project = copy_project(tmp_path / "project")  # without the checkout's conf/local
    demo = load_parameters(project, "demo")
    base = load_parameters(project, None)
    assert demo["training"]["epochs"] != base["training"]["epochs"]
    assert demo["training"]["weight_decay"] == base["training"]["weight_decay"]  # soft merge

    main(["--env", "demo", "--output", str(tmp_path), "--project", str(project)])
    grid = demo["reproduce"]
    runs = sorted(path.stem for path in (tmp_path / "runs").glob("*.json"))
    expected = sorted(
        f"{d}.{b}.{h}.seed{s}"
        for d in grid["datasets"]
        for b in grid["backbones"]
        for h in grid["heads"]
        for s in grid["seeds"]
    )
    assert runs == expected
    written = json.loads((tmp_path / "runs" / f"{expected[0]}.json").read_text())
    inputs = run_stage_inputs(demo, GridRun.parse(expected[0]))
    assert {key: written[key] for key in inputs} == json.loads(json.dumps(inputs))
    dataset = json.loads((tmp_path / "datasets" / f"{grid['datasets'][0]}.json").read_text())
    assert dataset["raw_files"] is None  # synthetic data, written by its own stage


def test_a_grid_changed_outside_the_tracked_files_is_refused(tmp_path: Path, capsys) -> None:
    """DVC's stages are the grid of the tracked files: conf/local seeds, which Kedro layers over
    the demo, would train runs no stage declares, so stage_inputs stops, in one line."""
    project = copy_project(tmp_path / "project")
    (project / "conf/local/parameters_reproduce.yml").write_text("reproduce:\n  seeds: [42, 45]\n")
    with pytest.raises(SystemExit) as stopped:
        main(["--env", "demo", "--output", str(tmp_path / "out"), "--project", str(project)])
    assert stopped.value.code == 1
    error = capsys.readouterr().err
    assert error.startswith("Error: conf/local or --params change the grid of this DVC pipeline")
    assert "adds the runs synth_clinicdb.mit_b0.pld.seed45" in error
    assert "conf/base and conf/demo" in error
    assert not (tmp_path / "out").exists()

    # Settings of the runs themselves reach the stage files: its stage re-runs what changed.
    (project / "conf/local/parameters_reproduce.yml").write_text("training:\n  lr: 0.003\n")
    main(["--env", "demo", "--output", str(tmp_path / "out"), "--project", str(project)])
    written = json.loads(next((tmp_path / "out/runs").glob("*.json")).read_text())
    assert written["training"]["lr"] == 0.003
