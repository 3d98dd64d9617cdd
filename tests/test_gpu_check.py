"""scripts/gpu_check.sh, without a GPU: its commands still fit the project it checks.

The check runs only on a GPU machine, where a stale setting name or a dropped pin would cost
device time; here its plan is read back and checked against the configuration and the pins.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from ssformer_repro.config.checks import check_parameters
from ssformer_repro.config.loader import load_parameters, parse_params
from ssformer_repro.grid.runs import grid_runs
from tests.conftest import PROJECT_ROOT, clean_project

SCRIPT = PROJECT_ROOT / "scripts" / "gpu_check.sh"
NO_CUDA = "device 'cuda' was requested but CUDA is not available"


def script(*args: str) -> str:
    env = {"PATH": "/usr/bin:/bin", "PREPARE_PYTHON": sys.executable}
    done = subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def plan() -> str:
    return script("plan")


def params_of(line: str) -> dict:
    return parse_params(line.split("--params=", 1)[1])


def problems(parameters: dict) -> list[str]:
    """The configuration check's problems, apart from CUDA missing on this machine."""
    runs = grid_runs(parameters["reproduce"])
    found = check_parameters(parameters, parameters["data_processing"]["datasets"], runs)
    return [problem for problem in found if NO_CUDA not in problem]


def test_the_plan_lists_every_part(plan: str) -> None:
    parts = re.findall(r"^  (\S+) +\d+ s  ", plan, flags=re.MULTILINE)
    assert parts == [
        "install",
        "gpu-tests",
        "kedro-run",
        "benchmark-mit_b0",
        "benchmark-mit_b2",
        "benchmark-mit_b5",
        "compile",
        "packing",
    ]


def test_the_kedro_run_part_is_one_valid_run_of_the_demo(plan: str) -> None:
    (line,) = [line for line in plan.splitlines() if line.startswith("kedro run --env=demo")]
    parameters = load_parameters(clean_project(), "demo", params_of(line))

    assert problems(parameters) == []
    assert [run.name for run in grid_runs(parameters["reproduce"])] == [
        "synth_kvasir.mit_b0.sed.seed42"
    ]
    assert parameters["augmentation"]["image_size"] == 352
    assert parameters["training"]["device"] == "cuda"
    assert parameters["model"]["head_options"]["sed"]["embed_dim"] is None  # the study's width


def test_the_packing_part_trains_runs_of_its_grid(plan: str) -> None:
    grid_line, run_line = [line for line in plan.splitlines() if line.startswith("packing: ")]
    grid = json.loads(grid_line.split("reproduce ", 1)[1].split("; runs ")[0])
    packed = grid_line.split("; runs ")[1].split()
    parameters = load_parameters(clean_project(), "demo", params_of(run_line))
    parameters["reproduce"].update(grid)  # as the part writes it into its copy's conf/demo

    assert problems(parameters) == []
    names = [run.name for run in grid_runs(parameters["reproduce"])]
    assert len(packed) == 3 and set(packed) <= set(names)
    split = parameters["datasets"]["synth_kvasir"]["split"]
    images = parameters["datasets"]["synth_kvasir"]["synthetic"]["n_images"]
    assert images * (1 - split["test_fraction"] - split["val_fraction"]) == pytest.approx(800)


def test_the_carried_wheels_are_pinned_as_ci_installs_them() -> None:
    pins = script("_pinned").split()
    constraints = (PROJECT_ROOT / "constraints.txt").read_text().split()

    assert len(pins) >= 10
    assert set(pins) <= set(constraints)
    names = {re.sub(r"[-_.]+", "-", pin.split("==")[0]).lower() for pin in pins}
    assert {"kedro", "kedro-datasets", "albumentations", "segmentation-models-pytorch"} <= names
    assert {"pysodmetrics", "pydantic", "monai"} <= names
