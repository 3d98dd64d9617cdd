"""Every setting the README and docs/ tell a user to make reaches the run it is meant for, in
every environment, without editing a tracked file; a setting given that the environment would
not read is an error (conf/README.md).

Each documented conf/local snippet (a YAML block of the docs whose comment names a conf/local
file) and each documented `kedro run ... --params` command goes through the real `kedro run`,
with `--check` (the start-of-run check alone), in a copy of the project.
"""

from __future__ import annotations

import re
import shlex
import textwrap
from pathlib import Path

import pytest
import yaml

from ssformer_repro.config.loader import load_parameters
from ssformer_repro.models.pretrained import is_weights_path
from ssformer_repro.polyps.layouts import discover_pairs
from ssformer_repro.polyps.synthetic import generate_synthetic_polyps, write_synthetic_dataset
from ssformer_repro.settings_types import merge_settings
from tests.conftest import PROJECT_ROOT, copy_project, kedro
from tests.test_cli import runs_line

pytestmark = pytest.mark.slow  # `kedro` subprocesses

DOCS = (
    "README.md",
    "conf/README.md",
    "docs/statistics.md",
    "docs/reliability.md",
    "docs/scaling.md",
)
YAML_BLOCK = re.compile(r"^( *)```yaml\n(.*?)^\1```", re.MULTILINE | re.DOTALL)
LOCAL_FILE = re.compile(r"^# (conf/local/[\w-]+\.yml)\b")
KEDRO_RUN = re.compile(r"(?:\.venv/bin/)?kedro run [^`\n]*--params[= ][^`\n]+")


def documented_local_settings() -> dict[str, dict]:
    """conf/local file -> its content, from every YAML block of the docs that names one (the
    blocks' contents for one file merged)."""
    files: dict[str, dict] = {}
    for doc in DOCS:
        for _, block in YAML_BLOCK.findall((PROJECT_ROOT / doc).read_text()):
            target, lines = None, {}
            for line in textwrap.dedent(block).splitlines():
                named = LOCAL_FILE.match(line)
                if named:
                    target = named.group(1)
                elif target:
                    lines.setdefault(target, []).append(line)
            for name, content in lines.items():
                files[name] = merge_settings(
                    files.get(name, {}), yaml.safe_load("\n".join(content))
                )
    return files


def documented_param_commands() -> list[list[str]]:
    """Every `kedro run ... --params ...` command of the docs, as arguments after `kedro`."""
    commands = []
    for doc in DOCS:
        for command in KEDRO_RUN.findall((PROJECT_ROOT / doc).read_text()):
            commands.append(shlex.split(command.split("#")[0])[1:])
    return commands


def with_data(project: Path, env: str | None) -> Path:
    """Give `project` what the configuration of `env` names: a few synthetic images in each
    dataset's layout, the files its split settings name, and (empty) weights files."""
    parameters = load_parameters(project, env)
    for name in parameters["data_processing"]["datasets"]:
        dataset = parameters["datasets"][name]
        root = project / dataset["root"]
        if dataset["source"] != "files" or root.exists():
            continue
        samples = generate_synthetic_polyps(10, seed=0, min_size=64, max_size=72)
        test_sets = {"Kvasir": 2} if dataset["layout"] == "pranet" else None
        write_synthetic_dataset(samples, root, dataset["layout"], test_sets=test_sets)
        ids = [pair.id for pair in discover_pairs(dataset["layout"], root)]
        split = dataset["split"]
        if split.get("groups"):
            lines = [f"{sample_id},{index % 5}" for index, sample_id in enumerate(ids)]
            write(project / split["groups"], "id,group\n" + "\n".join(lines) + "\n")
        lists = split.get("id_lists") or {}
        for key, path in lists.items():
            share = {"train": ids[:8], "test": ids[8:]}.get(key, [])
            write(project / path, "\n".join(share) + "\n")
    for path in (parameters["model"].get("pretrained") or {}).values():
        if path and is_weights_path(path):
            write(project / path, "")
    return project


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def check(project: Path, *args: str):
    return kedro(project, "run", "--check", *args, check=False)


@pytest.fixture(scope="module")
def local_settings() -> dict[str, dict]:
    files = documented_local_settings()
    # What the docs show: seeds, k-fold with groups, official id lists, per-run overrides.
    assert files["conf/local/parameters_reproduce.yml"]["reproduce"]["seeds"] == [42, 43, 44]
    assert set(files["conf/local/parameters_reproduce.yml"]["reproduce"]["overrides"]) == {
        "kvasir.mit_b5",
        "kvasir.mit_b5.pld",
    }
    datasets = files["conf/local/parameters_data_processing.yml"]["datasets"]
    assert datasets["clinicdb"]["split"]["strategy"] == "kfold"
    assert datasets["kvasir"]["split"]["strategy"] == "id_lists"
    return files


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory, local_settings: dict) -> Path:
    """A copy of the project with every documented conf/local setting, and data to check."""
    project = copy_project(tmp_path_factory.mktemp("documented"))
    for name, content in local_settings.items():
        write(project / name, yaml.safe_dump(content, sort_keys=False))
    return with_data(project, None)


def test_every_documented_local_setting_reaches_the_default_environment(study: Path) -> None:
    # One backbone keeps the check short: three seeds, five folds of clinicdb, kvasir's lists.
    result = check(study, "--params=reproduce.only=kvasir.mit_b5 clinicdb.mit_b5")
    assert result.returncode == 0, result.stdout + result.stderr
    runs = runs_line(result.stdout)
    assert "kvasir.mit_b5.sed.seed44" in runs  # three seeds
    assert "clinicdb.mit_b5.pld.seed43.fold4" in runs  # five folds
    assert len(runs) == 3 * 3 + 3 * 3 * 5  # kvasir's runs, clinicdb's per fold


@pytest.mark.parametrize("env", ["demo", "paper"])
def test_local_seeds_reach_every_environment(
    tmp_path: Path, local_settings: dict, env: str
) -> None:
    project = copy_project(tmp_path)
    name = "conf/local/parameters_reproduce.yml"
    seeds = {"reproduce": {"seeds": local_settings[name]["reproduce"]["seeds"]}}
    write(project / name, yaml.safe_dump(seeds))
    with_data(project, env)
    result = check(project, f"--env={env}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"conf/{env} < conf/local (parameters_reproduce.yml)" in result.stdout
    assert {run.rsplit(".seed", 1)[1] for run in runs_line(result.stdout)} == {"42", "43", "44"}


def test_settings_an_environment_would_not_read_are_errors(study: Path) -> None:
    """Under --env=demo the study's dataset settings, a typo, a misnamed file and conf/local's
    globals would be dropped: each is one line of the refusal, before any work."""
    local = study / "conf/local"
    write(local / "parameters_typo.yml", "training:\n  epoch: 3\n")
    write(local / "parameter_reproduce.yml", "reproduce:\n  seeds: [7]\n")
    write(local / "globals.yml", "data_root: elsewhere\n")
    try:
        result = check(study, "--env=demo", "--params=datasets.kvasir.split.seed=1")
    finally:
        for name in ("parameters_typo.yml", "parameter_reproduce.yml", "globals.yml"):
            (local / name).unlink()
    log = result.stdout + result.stderr
    assert result.returncode != 0 and "nothing was run" in log and "Traceback" not in log
    for expected in (
        "datasets.clinicdb (conf/local/parameters_data_processing.yml): not read under --env=demo",
        "datasets.kvasir (conf/local/parameters_data_processing.yml): not read under --env=demo",
        "datasets.kvasir (--params): not read under --env=demo",
        "training.epoch: not a setting here",
        "local/parameter_reproduce.yml: read by nothing",
        "local/globals.yml: not read under --env=demo",
    ):
        assert expected in log, expected


def test_every_documented_params_command_passes_its_check(tmp_path: Path) -> None:
    commands = documented_param_commands()
    assert len(commands) >= 6  # reproduce.only, predict x2, export; lists in demo and paper
    project = copy_project(tmp_path)
    write(project / "data/frames/frame.png", "")
    write(project / "elsewhere/best.pt", "")
    for command in commands:
        env = next((arg.split("=", 1)[1] for arg in command if arg.startswith("--env=")), None)
        with_data(project, env)
        result = check(project, *command[1:])
        assert result.returncode == 0, (command, result.stdout + result.stderr)
        if any("reproduce.only" in arg for arg in command):
            runs = runs_line(result.stdout)
            assert {run.split(".")[0] + "." + run.split(".")[1] for run in runs} >= {
                "kvasir.mit_b0",
                "clinicdb.mit_b5",
            }
            assert all(run.startswith("kvasir.mit_b0.") or ".sed." in run for run in runs)
