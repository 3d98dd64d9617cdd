"""The project's `kedro run` (ssformer_repro/cli.py): lists in --params, `--check`, and errors a
user causes ending in one line, without a traceback, through the real command line.

The changed-settings refusal and the existing prediction folder, which need a trained run, are
checked the same way in tests/pipelines/test_rerun.py and tests/pipelines/test_predict.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT, copy_project, kedro

pytestmark = pytest.mark.slow  # `kedro` subprocesses

# The start of an error message -> the `kedro run` arguments that cause it, in a fresh copy.
USER_ERRORS = {
    "Error: --env=demoo: there is no environment 'demoo'": ["--env=demoo"],
    "Error: reproduce.only ['nothing'] matches no run of the grid; its runs: synth_kvasir.": [
        "--env=demo",
        "--params=reproduce.only=nothing",
    ],
    "Error: Dataset at data/01_raw/kvasir-seg does not match the 'kvasir' layout": [
        "--pipelines=data_processing",
        "--namespaces=kvasir",
        "--params=tracking.enabled=false",
    ],
    "nothing was run:\n- reproduce.heads: the report's verdict compares pld vs sed": [
        "--env=demo",
        "--params=reproduce.heads=[pld]",
    ],
    "Invalid value for '--params': --params 'reproduce.heads=[pld,sed' is not key=value": [
        "--env=demo",
        "--params=reproduce.heads=[pld,sed",
    ],
}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = copy_project(tmp_path_factory.mktemp("cli"))
    (project / "data/01_raw/kvasir-seg").mkdir()  # an empty dataset folder
    return project


def output(result) -> str:
    return result.stdout + result.stderr


def runs_line(stdout: str) -> list[str]:
    """The runs `kedro run --check` lists."""
    (line,) = [line for line in stdout.splitlines() if line.startswith("runs trained")]
    return line.split(": ", 1)[1].split(", ")


@pytest.mark.parametrize("message", USER_ERRORS)
def test_a_user_error_is_its_message_without_a_traceback(project: Path, message: str) -> None:
    result = kedro(project, "run", *USER_ERRORS[message], check=False)
    assert result.returncode != 0
    assert message in output(result)
    assert "Traceback" not in output(result)


def test_verbose_shows_the_traceback_too(project: Path) -> None:
    result = kedro(project, "run", "--env=demoo", "--verbose", check=False)
    assert result.returncode != 0
    assert "there is no environment 'demoo'" in output(result)
    assert "Traceback" in output(result)


def test_params_carry_lists_and_check_runs_nothing(project: Path) -> None:
    params = "--params=reproduce.heads=[pld,sed],reproduce.seeds=[42,43],training.epochs=1"
    result = kedro(project, "run", "--env=demo", "--check", params)
    runs = [
        f"{dataset}.mit_b0.{head}.seed{seed}"
        for dataset in ("synth_kvasir", "synth_clinicdb")
        for head in ("pld", "sed")
        for seed in (42, 43)
    ]
    assert runs_line(result.stdout) == runs
    assert "nothing was run" in result.stdout
    assert not (project / "data/demo").exists()


def test_a_config_file_carries_params_as_documented(project: Path) -> None:
    documented = (PROJECT_ROOT / "conf/README.md").read_text()
    run_yml = documented.split("# run.yml\n", 1)[1].split("```", 1)[0]
    (project / "run.yml").write_text(run_yml)
    result = kedro(project, "run", "--config=run.yml", "--check")
    runs = runs_line(result.stdout)
    assert runs == [
        f"{dataset}.mit_b0.{head}.seed{seed}"
        for dataset in ("synth_kvasir", "synth_clinicdb")
        for head in ("pld", "sed")
        for seed in (42, 43)
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["list", "--env=demo", "--params=reproduce.only=nothing"], "Error: reproduce.only"),
        (
            ["run", "synth_kvasir.mit_b0.pld.seed42", "--env=demo", "--params=training.lr=-1"],
            "Error: 1 problem(s) in the parameters (env 'demo'); nothing was run",
        ),
    ],
)
def test_the_grid_command_line_prints_user_errors_alike(
    project: Path, args: list[str], message: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ssformer_repro.grid", *args],
        cwd=project,
        env={**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert message in result.stderr and "Traceback" not in output(result)
