"""Shared fixtures: a throw-away copy of the Kedro project to run pipelines in.

Tests never read or write the checkout's own data/, mlruns/, mlflow.db or conf/local, which are
the user's (the README's demo fills them before the tests run): the session runs in
`clean_project()`, a copy of the project's code and configuration, so relative paths and
`kedro`'s project discovery land there; parameters are read from it, never from PROJECT_ROOT;
and a session that changed the checkout's user files fails, naming them.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch
import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PROJECT_FILES = ("pyproject.toml", "README.md", "conf", "src")
DATA_LAYERS = ("01_raw", "02_intermediate", "05_model_input", "06_models", "08_reporting")
# What a user's runs write into the checkout: tests must leave them as they found them.
USER_PATHS = ("data", "mlruns", "mlflow.db", "conf/local")
USER_FILES = pytest.StashKey[dict[str, tuple[int, int]]]()

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


def user_files() -> dict[str, tuple[int, int]]:
    """Every file and folder under the checkout's USER_PATHS: a file's (size, modification time
    in ns), a folder's (-1, 0)."""
    found = {}
    for name in USER_PATHS:
        top = PROJECT_ROOT / name
        for path in [top, *top.rglob("*")] if top.is_dir() else [top]:
            if path.exists():
                stat = path.stat()
                key = path.relative_to(PROJECT_ROOT).as_posix()
                found[key] = (-1, 0) if path.is_dir() else (stat.st_size, stat.st_mtime_ns)
    return found


def pytest_sessionstart(session: pytest.Session) -> None:
    """Note the checkout's user files, for `pytest_sessionfinish`."""
    session.config.stash[USER_FILES] = user_files()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail a session that wrote into the checkout's data/, mlruns/, mlflow.db or conf/local."""
    before, after = session.config.stash.get(USER_FILES, None), user_files()
    if before is None or before == after:
        return
    changed = sorted(
        name for name in before.keys() | after.keys() if before.get(name) != after.get(name)
    )
    listed = "\n  ".join(changed[:20]) + ("\n  ..." if len(changed) > 20 else "")
    session.config.get_terminal_writer().line(
        f"\nThe tests changed {len(changed)} path(s) under the checkout's own "
        f"{', '.join(USER_PATHS)}, which are the user's (tests work in tmp_path copies; or did "
        f"something else write there meanwhile?):\n  {listed}",
        red=True,
    )
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


@functools.cache
def clean_project() -> Path:
    """A copy of the project's code and configuration, made once per session, without the
    checkout's data/, conf/local, mlflow.db or mlruns/: tests read parameters from it."""
    folder = Path(tempfile.mkdtemp(prefix="ssformer-tests-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return copy_project(folder / "project")


@pytest.fixture(autouse=True, scope="session")
def in_clean_project():
    """Run the session in `clean_project()`: relative paths, `kedro`'s project discovery and
    `--project .` defaults never reach the checkout."""
    before = Path.cwd()
    os.chdir(clean_project())
    yield
    os.chdir(before)


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
