"""Shared fixtures: a throw-away copy of the Kedro project to run pipelines in."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PROJECT_FILES = ("pyproject.toml", "README.md", "conf", "src")
DATA_LAYERS = ("01_raw", "02_intermediate", "05_model_input", "06_models", "08_reporting")

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the tests marked `gpu` where torch sees no CUDA device."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (marker gpu); torch sees none")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """Torch on one thread in the test process: tiny models gain nothing from threads, and two
    threads crawl when another process shares a 2-core machine. Subprocesses are unaffected."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def copy_project(target: Path) -> Path:
    """Copy this project's code and configuration (no data, no local conf) into ``target``."""
    target.mkdir(parents=True, exist_ok=True)
    for name in PROJECT_FILES:
        source = PROJECT_ROOT / name
        if source.is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "local", "*.egg-info")
            shutil.copytree(source, target / name, ignore=ignore)
        else:
            shutil.copy2(source, target / name)
    (target / "conf" / "local").mkdir()
    for layer in DATA_LAYERS:
        (target / "data" / layer).mkdir(parents=True)
    return target


def kedro(project: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run the ``kedro`` CLI of this environment inside ``project``."""
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}",
        "COLUMNS": "1000",  # Kedro logs through rich: one line per message, not wrapped
    }
    result = subprocess.run(
        [sys.executable, "-m", "kedro", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"kedro {' '.join(args)} failed ({result.returncode}):\n{result.stdout[-4000:]}\n"
            f"{result.stderr[-4000:]}"
        )
    return result


@pytest.fixture(scope="session")
def demo_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the project in which tests run the demo environment."""
    return copy_project(tmp_path_factory.mktemp("project"))


@pytest.fixture(scope="session")
def reproduced(demo_project: Path) -> Path:
    """The demo project after one 2-epoch `reproduce` run, shared by the tests of its outputs."""
    kedro(demo_project, "run", "--pipelines=reproduce", "--env=demo", "--params=training.epochs=2")
    return demo_project


def edit_yaml(path: Path, change) -> None:
    """Apply `change(content)` to the YAML file at `path` (an empty mapping if it is new)."""
    content = yaml.safe_load(path.read_text()) if path.exists() else {}
    change(content)
    path.write_text(yaml.safe_dump(content, sort_keys=False))


def shrink_demo(
    project: Path, heads: int = 2, n_images: int = 20, tracking: bool = True, seeds: int = 1
) -> list[str]:
    """A project copy's demo cut to one dataset of `n_images`, one backbone, the first `heads`
    heads, the first `seeds` seeds and one epoch (MLflow on or off); returns the run names."""
    conf = project / "conf" / "demo"
    grid = yaml.safe_load((conf / "parameters_reproduce.yml").read_text())["reproduce"]
    dataset, backbone, chosen = grid["datasets"][0], grid["backbones"][0], grid["heads"][:heads]
    seeds_kept = grid["seeds"][:seeds]

    def data_processing(parameters: dict) -> None:
        parameters["data_processing"]["datasets"] = [dataset]
        parameters["datasets"][dataset]["synthetic"]["n_images"] = n_images

    edit_yaml(
        conf / "parameters_reproduce.yml",
        lambda p: p["reproduce"].update(
            datasets=[dataset], backbones=[backbone], heads=chosen, seeds=seeds_kept
        ),
    )
    edit_yaml(conf / "parameters_data_processing.yml", data_processing)
    edit_yaml(conf / "parameters_training.yml", lambda p: p["training"].update(epochs=1))
    if not tracking:
        edit_yaml(conf / "parameters_tracking.yml", lambda p: p.update(tracking={"enabled": False}))
    return [f"{dataset}.{backbone}.{head}.seed{seed}" for head in chosen for seed in seeds_kept]
