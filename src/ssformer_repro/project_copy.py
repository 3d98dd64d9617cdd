"""A throw-away copy of the Kedro project (code and configuration, no data) to run pipelines in.

Used by the benchmark's Kedro-overhead section and by the tests, so neither touches `data/`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

PROJECT_FILES = ("pyproject.toml", "README.md", "conf", "src")
DATA_LAYERS = ("01_raw", "02_intermediate", "05_model_input", "06_models", "08_reporting")


def copy_project(project: Path, target: Path) -> Path:
    """Copy the project's code and configuration (no data, no local conf) into `target`."""
    missing = [name for name in PROJECT_FILES if not (project / name).exists()]
    if missing:
        raise FileNotFoundError(
            f"{project} lacks {missing}: pass the Kedro project's root folder (the benchmark's "
            "--project)."
        )
    target.mkdir(parents=True, exist_ok=True)
    for name in PROJECT_FILES:
        source = project / name
        if source.is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "local", "*.egg-info")
            shutil.copytree(source, target / name, ignore=ignore)
        else:
            shutil.copy2(source, target / name)
    (target / "conf" / "local").mkdir()
    for layer in DATA_LAYERS:
        (target / "data" / layer).mkdir(parents=True)
    return target
