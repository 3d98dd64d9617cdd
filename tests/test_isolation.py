"""Tests never depend on what the user ran in the checkout (tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

from ssformer_repro.config.loader import load_parameters
from tests.conftest import PROJECT_ROOT, clean_project


def test_the_session_runs_in_a_project_copy_without_the_users_files() -> None:
    assert Path.cwd() == clean_project() and not Path.cwd().is_relative_to(PROJECT_ROOT)
    assert list((clean_project() / "conf/local").iterdir()) == []
    assert [path.name for path in (clean_project() / "data").iterdir() if path.is_file()] == []
    assert not (clean_project() / "mlflow.db").exists()
    # Relative paths of the configuration resolve in the copy, whatever the checkout holds.
    root = load_parameters(clean_project(), "demo")["datasets"]["synth_kvasir"]["root"]
    assert not Path(root).is_absolute() and not Path(root).exists()
