"""Safety: no pickle from files is executed, servers bind to loopback, credentials stay local."""

from __future__ import annotations

import ast
import re
import subprocess
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from PIL import Image, ImageFile

import ssformer_repro
from tests.conftest import PROJECT_ROOT, clean_project, copy_project

SOURCE_FILES = sorted((PROJECT_ROOT / "src").rglob("*.py")) + sorted(
    (PROJECT_ROOT / "scripts").rglob("*.py")
)
# Calls that unpickle (run code from) a file, as "module.function" of the call's last two names.
UNPICKLING_CALLS = {
    "pickle.load",
    "pickle.loads",
    "pd.read_pickle",
    "pandas.read_pickle",
    "joblib.load",
    "dill.load",
    "cloudpickle.load",
    "yaml.unsafe_load",
}


def dotted_name(node: ast.expr) -> str:
    """'torch.load' for `torch.load`, 'np.load' for `np.load`, '' for anything else."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return f"{node.value.id}.{node.attr}"
    return node.id if isinstance(node, ast.Name) else ""


def keyword_is(call: ast.Call, name: str, value: object) -> bool:
    return any(
        keyword.arg == name
        and isinstance(keyword.value, ast.Constant)
        and keyword.value.value is value
        for keyword in call.keywords
    )


def unsafe_loads(source: str) -> list[str]:
    """Every call in `source` that could execute pickled code from a file."""
    problems = []
    for call in (node for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Call)):
        name = dotted_name(call.func)
        line = f"line {call.lineno}: {name}"
        if name == "torch.load" and not keyword_is(call, "weights_only", True):
            problems.append(f"{line} without weights_only=True")
        elif name in ("np.load", "numpy.load") and keyword_is(call, "allow_pickle", True):
            problems.append(f"{line} with allow_pickle=True")
        elif name == "yaml.load" and not any(k.arg == "Loader" for k in call.keywords):
            problems.append(f"{line} without a safe Loader")
        elif name in UNPICKLING_CALLS:
            problems.append(line)
    return problems


def test_the_check_finds_unsafe_loads() -> None:
    unsafe = "torch.load(p)\ntorch.load(p, weights_only=False)\nnp.load(p, allow_pickle=True)\n"
    assert len(unsafe_loads(unsafe + "pickle.load(f)\npd.read_pickle(p)\n")) == 5
    assert unsafe_loads("torch.load(p, map_location='cpu', weights_only=True)\nnp.load(p)") == []


@pytest.mark.parametrize(
    "path", SOURCE_FILES, ids=lambda path: path.relative_to(PROJECT_ROOT).as_posix()
)
def test_no_source_file_unpickles_a_file(path: Path) -> None:
    assert unsafe_loads(path.read_text(encoding="utf-8")) == []


def test_loading_a_checkpoint_refuses_pickled_code(tmp_path: Path) -> None:
    from ssformer_repro.training.checkpoint import CheckpointError, load_checkpoint

    path = tmp_path / "evil.pt"
    torch.save({"model": {}, "payload": Path("/etc/passwd")}, path)  # any non-tensor object
    with pytest.raises(CheckpointError, match="weights_only"):
        load_checkpoint(path)


def test_catalog_has_no_pickle_datasets() -> None:
    for catalog in sorted((clean_project() / "conf").rglob("catalog*.yml")):
        text = catalog.read_text(encoding="utf-8")
        assert not re.search(r"pickle|joblib", text, re.IGNORECASE), catalog


def test_pillow_decompression_bomb_guard_is_kept() -> None:
    for path in SOURCE_FILES:
        assigned = {
            target.attr
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(node, ast.Assign)
            for target in node.targets
            if isinstance(target, ast.Attribute)
        }
        assert not assigned & {"MAX_IMAGE_PIXELS", "LOAD_TRUNCATED_IMAGES"}, path
    assert Image.MAX_IMAGE_PIXELS == int(1024 * 1024 * 1024 // 4 // 3) and ssformer_repro
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


# The servers a user starts on their own machine; a shared `mlflow server` for a cluster
# (docs/scaling.md) is the documented "unless asked otherwise".
LOCAL_SERVER_COMMAND = re.compile(r"(kedro viz|mlflow ui)\b[^\n`]*")


def test_documented_server_commands_bind_to_loopback() -> None:
    documents = [PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").rglob("*.md"))]
    commands = [
        match.group(0)
        for document in documents + SOURCE_FILES
        for match in LOCAL_SERVER_COMMAND.finditer(document.read_text(encoding="utf-8"))
    ]
    assert any(command.startswith("kedro viz") for command in commands)
    assert any(command.startswith("mlflow ui") for command in commands)
    for command in commands:
        host = re.search(r"--host[ =](\S+)", command)
        assert host is None or host.group(1) in ("127.0.0.1", "localhost"), command


def test_no_code_binds_a_server_to_every_interface() -> None:
    configuration = sorted((clean_project() / "conf").rglob("*.yml"))
    for path in SOURCE_FILES + configuration:
        assert "0.0.0.0" not in path.read_text(encoding="utf-8"), path


def test_kedro_viz_and_mlflow_default_to_loopback() -> None:
    from kedro_viz.launchers.cli.run import run as kedro_viz_run
    from mlflow.cli import cli as mlflow_cli

    viz_host = next(p for p in kedro_viz_run.params if p.name == "host")
    assert viz_host.default == "127.0.0.1"
    mlflow_host = next(p for p in mlflow_cli.commands["server"].params if p.name == "host")
    assert mlflow_host.default == "127.0.0.1"  # `mlflow ui` is an alias of `mlflow server`


def test_local_configuration_is_git_ignored() -> None:
    if not (PROJECT_ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    ignored = subprocess.run(
        ["git", "check-ignore", "conf/local/credentials.yml", "conf/local/parameters.yml"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert ignored.stdout.split() == ["conf/local/credentials.yml", "conf/local/parameters.yml"]
    tracked = subprocess.run(
        ["git", "ls-files", "conf/local"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert set(tracked.stdout.split()) <= {"conf/local/.gitkeep"}


def test_credentials_never_reach_mlflow_parameters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real training node logs its parameters; credentials are not among them. A secret put
    into parameters by mistake is refused by the configuration check without showing its value,
    and flatten redacts secret-named values (docs/reliability.md)."""
    import mlflow
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    from ssformer_repro.grid.run_config import resolve_run
    from ssformer_repro.grid.runs import GridRun
    from ssformer_repro.pipelines.training import nodes
    from ssformer_repro.polyps.cache import DecodedCache
    from ssformer_repro.training import loop, run
    from ssformer_repro.training.checkpoint import HISTORY_COLUMNS

    (tmp_path / "project").mkdir()
    project = copy_project(tmp_path / "project")
    secrets = {name: f"{name}-{uuid.uuid4().hex}" for name in ("key_id", "secret", "token")}
    credentials = {"dev_s3": {"client_kwargs": {"aws_access_key_id": secrets["key_id"]}}}
    credentials["dev_s3"]["client_kwargs"]["aws_secret_access_key"] = secrets["secret"]
    (project / "conf/local/credentials.yml").write_text(yaml.safe_dump(credentials))
    monkeypatch.chdir(project)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    bootstrap_project(project)
    with KedroSession.create(project_path=project) as session:
        parameters = session.load_context().params

    def no_training(model, train_set, val_set, config, run_dir, run_name, on_epoch_end, **kwargs):
        history = pd.DataFrame(columns=HISTORY_COLUMNS)
        best = Path(run_dir) / "best.pt"
        return loop.TrainingResult(history, best, best, best_epoch=1, best_val_mdice=0.5)

    monkeypatch.setattr(run, "build_configured_model", lambda *args: torch.nn.Identity())
    monkeypatch.setattr(run, "train_segmenter", no_training)
    cache = DecodedCache(
        ids=["a", "b", "c", "d"],
        images=np.zeros((4, 32, 32, 3), np.uint8),
        masks=np.zeros((4, 32, 32), np.uint8),
        splits=["train", "train", "val", "val"],
    )
    tracking = {
        **parameters["tracking"],
        "uri": f"sqlite:///{project / 'mlflow.db'}",
        "log_checkpoints": False,
    }
    manifest = pd.DataFrame(
        {"id": cache.ids, "image_path": "x", "mask_path": "y", "split": cache.splits}
    )
    run = GridRun("kvasir", "mit_b0", "pld", 42)
    config = resolve_run(run, {**parameters, "tracking": tracking})
    summary, _ = nodes.train(config, cache, manifest, tmp_path / "run_folder")

    logged = mlflow.get_run(summary["mlflow_run_id"]).data
    assert logged.params["training.batch_size"] == str(parameters["training"]["batch_size"])
    # A secret put into parameters by mistake (e.g. a hub token): refused before any work,
    # without its value in the message; and never logged as it is.
    from ssformer_repro.config.checks import schema_problems
    from ssformer_repro.models.settings import ModelSettings
    from ssformer_repro.tracking.runs import flatten

    (problem,) = schema_problems(ModelSettings, {"hub_token": secrets["token"]}, "model")
    assert problem.startswith("model.hub_token: not a setting") and secrets["token"] not in problem
    assert flatten({"model": {"hub_token": secrets["token"]}}) == {"model.hub_token": "<redacted>"}
    everything = repr(logged.params) + repr(logged.tags)
    for secret in secrets.values():
        assert secret not in everything
