"""The configuration is checked before any work starts, one message per problem."""

from __future__ import annotations

import copy
import time
from pathlib import Path

import pytest
import yaml

from ssformer_repro.config.checks import check_parameters
from ssformer_repro.grid.runs import GridRun
from tests.conftest import PROJECT_ROOT, copy_project, kedro


def base_parameters() -> dict:
    parameters: dict = {}
    for path in sorted((PROJECT_ROOT / "conf" / "base").glob("parameters_*.yml")):
        parameters.update(yaml.safe_load(path.read_text()))
    return parameters


@pytest.fixture
def parameters(tmp_path: Path) -> dict:
    parameters = copy.deepcopy(base_parameters())
    for dataset in parameters["datasets"].values():
        dataset["root"] = str(tmp_path)  # exists
    parameters["model"]["pretrained"] = None
    return parameters


def test_valid_parameters_have_no_problems(parameters: dict) -> None:
    assert (
        check_parameters(parameters, ["kvasir", "clinicdb"], [GridRun.parse("kvasir.mit_b0.pld")])
        == []
    )


def test_every_problem_is_listed_with_the_valid_choices(parameters: dict, tmp_path: Path) -> None:
    parameters["datasets"]["kvasir"]["layout"] = "kvasr"
    parameters["datasets"]["clinicdb"]["root"] = str(tmp_path / "missing")
    parameters["augmentation"]["image_size"] = 350
    parameters["training"]["epochs"] = 0
    parameters["evaluation"]["amp"] = "bf32"
    parameters["model"]["pretrained"] = {"mit_b0": str(tmp_path / "mit_b0.pth")}
    problems = check_parameters(
        parameters,
        ["kvasir", "clinicdb"],
        [GridRun.parse("kvasir.mit_b9.pld"), GridRun.parse("kvasir.mit_b0.plx")],
    )
    text = "\n".join(problems)
    assert "datasets.kvasir.layout is 'kvasr'" in text and "'clinicdb'" in text
    assert "missing does not exist" in text and "polyp.grand-challenge.org" in text
    assert "image_size is 350" in text
    assert "unknown backbone 'mit_b9'" in text and "mit_b5" in text
    assert "unknown head 'plx'" in text and "pld_linear" in text
    assert "epochs" in text
    assert "evaluation.amp is 'bf32'" in text and "'bf16'" in text
    assert "mit_b0.pth does not exist" in text
    assert len(problems) >= 8


def test_a_run_override_is_checked_for_that_run_only(parameters: dict) -> None:
    parameters["reproduce"]["overrides"] = {"kvasir.mit_b0.sed": {"training": {"batch_size": -1}}}
    problems = check_parameters(
        parameters, [], [GridRun.parse("kvasir.mit_b0.pld"), GridRun.parse("kvasir.mit_b0.sed")]
    )
    assert len(problems) == 1 and problems[0].startswith("kvasir.mit_b0.sed: training settings")


def test_kedro_run_with_bad_parameters_fails_in_seconds(tmp_path: Path) -> None:
    project = copy_project(tmp_path)
    started = time.monotonic()
    result = kedro(
        project,
        "run",
        "--env=demo",
        "--params=augmentation.image_size=50,training.batch_size=0",
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "problem(s) in the parameters" in output and "nothing was run" in output
    assert "image_size is 50" in output and "batch_size" in output
    assert time.monotonic() - started < 60
    assert not any((project / "data").rglob("*.csv")), "work started despite the bad parameters"
