"""The DVC pipelines: the study's stages (dvc.yaml), and the demo reproduced through DVC.

Every test works in a copy of the project committed to a fresh git repository, so DVC's cache,
lock files and outputs never touch the working tree.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ssformer_repro.config.loader import load_parameters
from ssformer_repro.grid.runs import GridRun, grid_runs, parameter_grid
from ssformer_repro.pipelines.data_processing.pipeline import dataset_pipeline
from ssformer_repro.pipelines.reporting import pipeline as reporting_pipeline
from ssformer_repro.pipelines.training.pipeline import run_pipeline
from ssformer_repro.storage.digests import RESULT_PACKAGES
from tests.conftest import PROJECT_ROOT, copy_project, edit_yaml, shrink_demo

pytestmark = pytest.mark.slow  # Kedro/DVC/browser runs end to end

DVC_FILES = (
    "dvc.yaml",
    "demo",
    "paper",
    ".dvc/config",
    ".dvc/.gitignore",
    ".dvcignore",
    ".gitignore",
)
# DVC file -> the Kedro environment of its commands (None: the default one, as `kedro run`).
PIPELINES = {"dvc.yaml": None, "demo/dvc.yaml": "demo", "paper/dvc.yaml": "paper"}
RAN_STAGE = re.compile(r"Running stage '(?:demo/dvc\.yaml:)?([^']+)'")
UP_TO_DATE = "Data and pipelines are up to date."


def run(project: Path, *command: str) -> str:
    """Run a command of this environment (dvc, git) in ``project``; its output, or fail."""
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}",
        "OMP_NUM_THREADS": "1",  # tiny models: one thread per process shares 2 cores best
        "COLUMNS": "1000",  # Kedro logs through rich: one line per message, not wrapped
    }
    result = subprocess.run(
        command, cwd=project, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise AssertionError(
            f"{' '.join(command)} failed ({result.returncode}):\n"
            f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        )
    return result.stdout + result.stderr


def dvc(project: Path, *args: str) -> str:
    return run(project, sys.executable, "-m", "dvc", *args)


def commit(project: Path, message: str) -> None:
    run(project, "git", "add", "-A")
    identity = ("-c", "user.name=test", "-c", "user.email=test@example.com")
    run(project, "git", *identity, "commit", "-q", "-m", message)


def dvc_project(target: Path) -> Path:
    """A copy of the project and its DVC files (without lock files), in a fresh git repository."""
    copy_project(target)
    for name in DVC_FILES:
        source = PROJECT_ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("dvc.lock"))
        else:
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    run(target, "git", "init", "-q")
    commit(target, "project")
    return target


def config_loader(project: Path, env: str | None):
    """The loader ``kedro run --env <env>`` uses in ``project``."""
    from kedro.config import OmegaConfigLoader

    from ssformer_repro.settings import CONFIG_LOADER_ARGS

    return OmegaConfigLoader(conf_source=str(project / "conf"), env=env, **CONFIG_LOADER_ARGS)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return dvc_project(tmp_path_factory.mktemp("dvc_project"))


@pytest.mark.parametrize(("dvc_file", "env"), PIPELINES.items())
def test_one_stage_per_dataset_and_per_grid_run(
    project: Path, dvc_file: str, env: str | None
) -> None:
    parameters = load_parameters(project, env)
    grid = parameters["reproduce"]
    expected = {
        "stage_inputs",
        "reporting",
        *(f"data_processing@{name}" for name in parameters["data_processing"]["datasets"]),
        *(run.stage for run in grid_runs(grid, parameters["datasets"])),
    }
    listed = dvc(project, "stage", "list", dvc_file, "--name-only").split()
    assert {name.removeprefix(f"{dvc_file}:") for name in listed} == expected


@pytest.mark.parametrize(("dvc_file", "env"), PIPELINES.items())
def test_stage_outs_are_the_kedro_outputs_of_the_stage(
    project: Path, dvc_file: str, env: str | None
) -> None:
    """Each stage declares every file its Kedro pipeline writes, and nothing else."""
    from dvc.repo import Repo
    from kedro.io.catalog_config_resolver import CatalogConfigResolver

    loader = config_loader(project, env)
    parameters = loader["parameters"]
    catalog = CatalogConfigResolver(loader["catalog"])
    datasets = parameters["datasets"]
    kedro_pipelines = {
        f"data_processing@{name}": dataset_pipeline(name, datasets[name]["source"])
        for name in parameters["data_processing"]["datasets"]
    }
    kedro_pipelines |= {
        run.stage: run_pipeline(run) for run in grid_runs(parameters["reproduce"], datasets)
    }
    kedro_pipelines["reporting"] = reporting_pipeline.create_pipeline(parameters)

    with Repo(str(project)) as repo:
        stages = {
            stage.name: {Path(os.path.relpath(out.fs_path, project)) for out in stage.outs}
            for stage in repo.index.stages
            if Path(stage.path).resolve() == (project / dvc_file).resolve()
        }
    assert set(kedro_pipelines) <= set(stages)
    for stage, pipeline in kedro_pipelines.items():
        written = set()
        for output in pipeline.all_outputs():
            config = catalog.resolve_pattern(output)
            written.add(Path(config.get("filepath") or config["path"]))
        outs = stages[stage]
        undeclared = {path for path in written if not any(path.is_relative_to(o) for o in outs)}
        unwritten = {out for out in outs if not any(path.is_relative_to(out) for path in written)}
        assert not undeclared, f"{stage}: Kedro writes {undeclared}, not DVC outs"
        assert not unwritten, f"{stage}: DVC outs {unwritten} are not written by Kedro"


@pytest.mark.parametrize("dvc_file", PIPELINES)
def test_train_stages_persist_and_resume_only_their_own_inputs(
    project: Path, dvc_file: str
) -> None:
    """A killed run resumes under `dvc repro`; a run whose inputs changed starts over."""
    from dvc.repo import Repo

    parameters = load_parameters(project, PIPELINES[dvc_file])
    runs = {run.stage: run.stage_run.name for run in parameter_grid(parameters)}
    with Repo(str(project)) as repo:
        trains = [
            stage
            for stage in repo.index.stages
            if stage.name.startswith("train@")
            and Path(stage.path).resolve() == (project / dvc_file).resolve()
        ]
    assert trains
    for stage in trains:
        persistent = {Path(out.fs_path).parent.name for out in stage.outs if out.persist}
        assert persistent == {"06_models"}, f"{stage.name}: the run folder must persist"
        run = runs[stage.name]
        assert "training.on_changed_settings=restart" in stage.cmd
        assert f"--namespaces={run}" in stage.cmd
        # Exactly what the run's fingerprint holds (training/run.py): its settings file, its
        # dataset's manifest and cache, and the code of the packages its result depends on.
        deps = {Path(os.path.relpath(dep.fs_path, project)).as_posix() for dep in stage.deps}
        code = {f"src/ssformer_repro/{name}" for name in RESULT_PACKAGES}
        assert code <= deps
        assert {dep for dep in deps if dep.startswith("src/")} == code
        assert any(dep.endswith(f"stage_inputs/runs/{run}.json") for dep in deps)
        assert not stage.params, "the run's settings come from its stage_inputs file alone"


def stages_run(output: str) -> set[str]:
    return set(RAN_STAGE.findall(output))


def stage_name(run: str) -> str:
    return GridRun.parse(run).stage


@pytest.fixture(scope="module")
def demo_through_dvc(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The demo reproduced, reproduced again, then again after one run's override changed."""
    project = dvc_project(tmp_path_factory.mktemp("dvc_demo"))
    runs = shrink_demo(project, tracking=False)
    commit(project, "a small demo")
    first = dvc(project, "repro", "demo/dvc.yaml")
    second = dvc(project, "repro", "demo/dvc.yaml")
    status = dvc(project, "status", "demo/dvc.yaml")

    changed, unchanged = runs[-1], runs[0]
    edit_yaml(
        project / "conf/demo/parameters_reproduce.yml",
        lambda p: p["reproduce"].update(overrides={changed: {"training": {"lr": 0.003}}}),
    )
    # The preview docs/dvc.md gives: `--dry` alone, then after the stage_inputs stage.
    dry_alone = dvc(project, "repro", "--dry", "demo/dvc.yaml")
    preview = dvc(project, "repro", "demo/dvc.yaml:stage_inputs")
    preview_status = dvc(project, "status", "demo/dvc.yaml")
    after_override = dvc(project, "repro", "demo/dvc.yaml")
    commit(project, "an override")

    # Changes no result depends on: a comment in the benchmark, the augmentation preview.
    with (project / "src/ssformer_repro/benchmark/__init__.py").open("a") as file:
        file.write("# a comment\n")
    edit_yaml(
        project / "conf/demo/parameters_data_processing.yml",
        lambda p: p["data_processing"]["preview"].update(n_samples=3),
    )
    unrelated = dvc(project, "repro", "demo/dvc.yaml")
    commit(project, "unrelated changes")

    # More epochs for one run: it resumes after its last epoch.
    edit_yaml(
        project / "conf/demo/parameters_reproduce.yml",
        lambda p: p["reproduce"]["overrides"].update({unchanged: {"training": {"epochs": 2}}}),
    )
    more_epochs = dvc(project, "repro", "demo/dvc.yaml")
    # The other way to run gives the same answer: plain kedro finds the run trained.
    plain_kedro = run(
        project,
        sys.executable,
        "-m",
        "kedro",
        "run",
        "--env=demo",
        "--pipelines=training",
        f"--namespaces={unchanged}",
    )
    data_root = (
        project / yaml.safe_load((project / "conf/demo/globals.yml").read_text())["data_root"]
    )
    metrics = data_root.relative_to(project) / "08_reporting/metrics.json"
    return {
        "project": project,
        "data_root": data_root,
        "metrics_path": metrics.as_posix(),
        "runs": runs,
        "changed": changed,
        "unchanged": unchanged,
        "stages": dvc(project, "stage", "list", "demo/dvc.yaml", "--name-only").split(),
        "first": first,
        "second": second,
        "status": status,
        "dry_alone": dry_alone,
        "preview": preview,
        "preview_status": preview_status,
        "after_override": after_override,
        "unrelated": unrelated,
        "more_epochs": more_epochs,
        "plain_kedro": plain_kedro,
        "final_status": dvc(project, "status", "demo/dvc.yaml"),
        "metrics": dvc(project, "metrics", "show", "--json", metrics.as_posix()),
    }


def test_demo_repro_runs_every_stage_and_writes_the_study(demo_through_dvc: dict) -> None:
    data_root = demo_through_dvc["data_root"]
    expected = {name.removeprefix("demo/dvc.yaml:") for name in demo_through_dvc["stages"]}
    assert stages_run(demo_through_dvc["first"]) == expected
    runs = [GridRun.parse(name) for name in demo_through_dvc["runs"]]
    for run in runs:
        assert (data_root / "06_models" / run.folder / "best.pt").is_file()
        history = data_root / "07_model_output" / run.folder / "history.csv"
        assert history.read_text().splitlines()[0].startswith("epoch,")
    shown = json.loads(demo_through_dvc["metrics"].splitlines()[0])
    metrics = shown[""]["data"][demo_through_dvc["metrics_path"]]["data"]
    heads = {run.head for run in runs}
    dataset, backbone = runs[0].dataset, runs[0].backbone
    assert set(metrics[dataset][backbone]) == heads


def test_second_repro_has_nothing_to_do(demo_through_dvc: dict) -> None:
    assert stages_run(demo_through_dvc["second"]) == set()
    assert UP_TO_DATE in demo_through_dvc["status"]


def test_one_runs_override_reruns_that_run_and_the_report_only(demo_through_dvc: dict) -> None:
    changed, output = demo_through_dvc["changed"], demo_through_dvc["after_override"]
    # stage_inputs re-resolved the configuration (the preview); only the changed run's file
    # differs, so only its stage and the report follow.
    assert stages_run(demo_through_dvc["preview"]) == {"stage_inputs"}
    assert stages_run(output) == {stage_name(changed), "reporting"}
    unchanged = stage_name(demo_through_dvc["unchanged"])
    assert f"Stage 'demo/dvc.yaml:{unchanged}' didn't change, skipping" in output
    inputs = demo_through_dvc["data_root"] / "02_intermediate/stage_inputs/runs" / f"{changed}.json"
    assert json.loads(inputs.read_text())["training"]["lr"] == 0.003
    assert UP_TO_DATE in demo_through_dvc["final_status"]


def changed_stages(status: str) -> set[str]:
    """The stages `dvc status` lists as changed (its unindented `<stage>:` lines)."""
    return {
        line.removesuffix(":").removeprefix("demo/dvc.yaml:")
        for line in status.splitlines()
        if line.endswith(":") and not line.startswith((" ", "\t"))
    }


def test_the_documented_preview_shows_the_training_that_repro_runs(demo_through_dvc: dict) -> None:
    """`dvc repro --dry` judges each stage on the files as they are, so it cannot see a run's
    settings before stage_inputs writes them; after that seconds-long stage, `dvc status`
    lists exactly the training stages the real repro runs (docs/dvc.md, "Previewing")."""
    changed = stage_name(demo_through_dvc["changed"])
    unchanged = stage_name(demo_through_dvc["unchanged"])
    assert (
        f"Stage 'demo/dvc.yaml:{changed}' didn't change, skipping" in demo_through_dvc["dry_alone"]
    )
    listed = changed_stages(demo_through_dvc["preview_status"])
    assert changed in listed and unchanged not in listed
    ran = stages_run(demo_through_dvc["after_override"])
    assert {stage for stage in ran if stage.startswith("train@")} == {
        stage for stage in listed if stage.startswith("train@")
    }
    documented = (PROJECT_ROOT / "docs/dvc.md").read_text()
    assert "dvc repro demo/dvc.yaml:stage_inputs && dvc status demo/dvc.yaml" in documented


def test_changes_no_result_depends_on_retrain_nothing(demo_through_dvc: dict) -> None:
    ran = stages_run(demo_through_dvc["unrelated"])
    assert not any(stage.startswith("train@") for stage in ran), ran
    assert "reporting" not in ran
    superseded = list((demo_through_dvc["data_root"] / "06_models").glob("*/superseded/*"))
    assert len(superseded) == 1  # only the run whose lr changed was ever trained again


def test_more_epochs_for_one_run_resume_it_under_dvc(demo_through_dvc: dict) -> None:
    unchanged = demo_through_dvc["unchanged"]
    output = demo_through_dvc["more_epochs"]
    assert stage_name(unchanged) in stages_run(output)
    assert f"run '{unchanged}': resuming from" in output and "after epoch 1" in output
    history = demo_through_dvc["data_root"] / "07_model_output" / unchanged / "history.csv"
    assert [line.split(",")[0] for line in history.read_text().splitlines()[1:]] == ["1", "2"]


def test_plain_kedro_after_dvc_finds_the_run_trained(demo_through_dvc: dict) -> None:
    output = demo_through_dvc["plain_kedro"]
    assert "already trained for 2 epochs; nothing to do" in output
    assert "ChangedSettingsError" not in output
