"""The whole configuration is checked before any work: one short message per problem, with its
parameter path, every run's own settings included (docs/reliability.md, "Bad configuration")."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch

from ssformer_repro.config.checks import ConfigurationError, check_parameters
from ssformer_repro.config.loader import load_parameters
from ssformer_repro.grid.runs import grid_runs
from tests.conftest import clean_project, copy_project, kedro


def problems_of(**params) -> list[str]:
    """The problems `kedro run --env demo --params ...` would report for the whole demo."""
    parameters = load_parameters(clean_project(), "demo", params)
    try:
        runs = grid_runs(parameters["reproduce"])
    except (ValueError, KeyError):
        runs = []
    return check_parameters(parameters, parameters["data_processing"]["datasets"], runs)


def test_the_demo_and_the_study_have_no_problems(tmp_path: Path) -> None:
    assert problems_of() == []
    base = load_parameters(clean_project(), "base")
    for dataset in base["datasets"].values():
        dataset["root"] = str(tmp_path)  # as if downloaded
    base["model"]["pretrained"] = None
    datasets = base["data_processing"]["datasets"]
    assert check_parameters(base, datasets, grid_runs(base["reproduce"])) == []


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"training": {"lrr": 0.1}}, "training.lrr: not a setting here"),
        ({"training": {"epochs": 0}}, "training.epochs: Input should be greater than 0 (got 0)"),
        ({"training": {"lr": "1e-4"}}, "training.lr: Input should be a valid number (got '1e-4')"),
        (
            {"training": {"scheduler": {"name": "warmup_step", "power": 2.0}}},
            "training.scheduler.power: not an option of 'warmup_step'",
        ),
        (
            {"training": {"scheduler": {"name": "cosine"}}},
            "training.scheduler: Input tag 'cosine' found using 'name' does not match",
        ),
        (
            {"model": {"head_options": {"pld": {"fusion": "mul"}}}},
            "model.head_options.pld.fusion: Input should be 'cat' or 'add' (got 'mul')",
        ),
        ({"augmentation": {"image_size": 50}}, "augmentation.image_size: must be a multiple of 32"),
        (
            {"augmentation": {"flip": {"diagonal_p": 0.5}}},
            "augmentation.flip.diagonal_p: not a setting here (a typo, or an option of another "
            "choice); valid: horizontal_p, vertical_p",
        ),
        (
            {"model": {"head_options": {"sed": {"fusion": "add"}}}},
            "model.head_options.sed.fusion: not a setting here (a typo, or an option of another "
            "choice); valid: embed_dim, dropout",
        ),
        (
            {"training": {"loss": {"name": "structure", "kernel_size": 0}}},
            "training.loss.kernel_size: Input should be greater than 0 (got 0)",
        ),
        ({"evaluation": {"amp": "bf32"}}, "evaluation.amp: Input should be 'auto', 'bf16'"),
        ({"reproduce": {"heads": ["pld", "plx"]}}, "reproduce.heads: unknown head(s) ['plx']"),
        (
            {"datasets": {"synth_kvasir": {"split": {"strategy": "random", "folds": 3}}}},
            "datasets.synth_kvasir.split.folds: not an option of 'random'",
        ),
        (
            {"reproduce": {"overrides": {"synth_kvasir": {"tracking": {"enabled": False}}}}},
            "reproduce.overrides.synth_kvasir.tracking: a run's override may change training, "
            "model, augmentation, evaluation only",
        ),
        (
            {"data_processing": {"datasets": ["synth_kvasir", "synth_clinicdb", "kvasir_seg"]}},
            "data_processing.datasets: 'kvasir_seg' is not described under `datasets:`",
        ),
    ],
)
def test_a_bad_setting_is_one_message_naming_its_path(params: dict, expected: str) -> None:
    problems = problems_of(**params)
    assert len(problems) == 1, problems
    assert problems[0].startswith(expected), problems[0]


def test_options_of_the_replaced_choice_never_reach_the_check() -> None:
    # base's poly has max_decay_steps, end_learning_rate and power: switching drops them.
    assert problems_of(training={"scheduler": {"name": "warmup_step"}}) == []


def test_an_override_that_names_no_run_is_an_error_listing_the_runs() -> None:
    problems = problems_of(reproduce={"overrides": {"synth_kvasir.mit_b0.pld-linear": {}}})
    assert len(problems) == 1
    assert "'synth_kvasir.mit_b0.pld-linear' names no run of the grid" in problems[0]
    assert "synth_kvasir.mit_b0.pld.seed42" in problems[0]  # the runs it lists


def test_a_runs_override_is_checked_for_that_run_only() -> None:
    overrides = {"synth_kvasir.mit_b0.sed.seed42": {"training": {"batch_size": -1}}}
    problems = problems_of(reproduce={"overrides": overrides})
    assert problems == [
        "synth_kvasir.mit_b0.sed.seed42: training.batch_size: Input should be greater than 0 "
        "(got -1)"
    ]


def test_a_prefix_override_applies_to_every_run_it_names() -> None:
    overrides = {"synth_kvasir": {"model": {"head_options": {"pld": {"fusion": "mul"}}}}}
    (problem,) = problems_of(reproduce={"overrides": overrides})
    assert problem.startswith("model.head_options.pld.fusion: Input should be 'cat' or 'add'")
    named = problem.split("(runs ")[1].rstrip(")").split(", ")
    assert {"synth_kvasir.mit_b0.pld.seed42", "synth_kvasir.mit_b0.pld.seed44"} <= set(named)
    assert all(run.startswith("synth_kvasir.") for run in named)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_device_this_machine_lacks_is_found_before_work() -> None:
    (problem,) = problems_of(evaluation={"device": "cuda", "amp": "bf16"})
    assert "evaluation: device 'cuda' was requested but CUDA is not available" in problem
    assert "(runs synth_kvasir.mit_b0.pld.seed42, " in problem  # once, for every run


def test_files_the_configuration_names_must_exist(tmp_path: Path) -> None:
    missing = tmp_path / "mit_b0.pth"
    problems = problems_of(
        model={"pretrained": {"mit_b0": str(missing)}},
        datasets={"synth_kvasir": {"source": "files", "synthetic": None}},
    )
    text = "\n".join(problems)
    assert f"model.pretrained.mit_b0: {missing} does not exist" in text
    assert "datasets.synth_kvasir.root:" in text and "does not exist" in text
    assert "datasets.simula.no" in text  # where to download it


@pytest.mark.slow
def test_kedro_run_with_bad_parameters_prints_the_problems_and_no_traceback(
    tmp_path: Path,
) -> None:
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
    assert result.returncode == 1
    assert "Error: 2 problem(s) in the parameters (env 'demo'); nothing was run" in output
    assert "augmentation.image_size: must be a multiple of 32" in output
    assert "training.batch_size: Input should be greater than 0" in output
    assert "Traceback" not in output and "ConfigurationError" not in output
    assert time.monotonic() - started < 60
    assert not any((project / "data").rglob("*.csv")), "work started despite the bad parameters"


def test_the_error_lists_every_problem() -> None:
    error = ConfigurationError(["a: bad", "b: worse"], "the parameters (env 'demo')")
    assert error.format_message() == (
        "2 problem(s) in the parameters (env 'demo'); nothing was run:\n- a: bad\n- b: worse"
    )


def test_thread_counts_are_checked_like_every_setting() -> None:
    # docs/benchmarks.md, "On a shared machine": --params=training.threads=1,evaluation.threads=1
    assert problems_of(training={"threads": 1}, evaluation={"threads": 1}) == []
    (problem,) = problems_of(evaluation={"threads": 0})
    assert problem.startswith("evaluation.threads: Input should be greater than 0 (got 0)")
