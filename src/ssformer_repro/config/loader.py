"""The parameters a `kedro run --env E --params P` sees: the one function that reads them.

Pipeline registration (the grid decides the pipelines' shape), the grid command line, the DVC
stage inputs and the benchmark all call `load_parameters`. It builds the config loader that
`settings.py` names, on the `conf` folder it names, exactly as a Kedro session does.

Pipelines are built from the parameters of the session that runs them: the project's
`SessionParametersHook` (hooks.py) hands them over with `use_session_parameters` when Kedro
creates the session's context, before anything reads the pipelines. Outside a session (for
example `kedro registry list`) the pipelines are built from `load_parameters()` of the default
environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

REGISTRY_MODULE = "ssformer_repro.pipeline_registry"

_session_parameters: dict[str, Any] | None = None


def load_parameters(
    project_path: str | Path | None = None,
    env: str | None = None,
    params: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The parameters of `kedro run --env <env> --params <params>` in `project_path`.

    `project_path` None is the Kedro project around the working directory, as for `kedro`;
    `env` None is Kedro's default (`KEDRO_ENV`, else `local` over `base`); `params` are the
    runtime parameters, nested as Kedro nests `--params "a.b=1"` (see `parse_params`).
    """
    from kedro.framework.project import settings
    from kedro.utils import find_kedro_project

    from ssformer_repro import settings as project_settings

    project = Path(project_path) if project_path is not None else find_kedro_project(Path.cwd())
    if project is None:
        raise FileNotFoundError(
            f"{Path.cwd()} is not inside a Kedro project (no pyproject.toml with [tool.kedro]); "
            "run from the project's root or pass its path."
        )
    loader = project_settings.CONFIG_LOADER_CLASS(
        conf_source=str(project / settings.CONF_SOURCE),
        env=env or os.getenv("KEDRO_ENV"),
        runtime_params=dict(params or {}),
        **project_settings.CONFIG_LOADER_ARGS,
    )
    return loader["parameters"]


def parse_params(text: str | None) -> dict[str, Any]:
    """`--params` text as Kedro's CLI reads it: ``"training.epochs=2,training.lr=0.01"``."""
    from omegaconf import OmegaConf

    items = [item.strip() for item in (text or "").split(",") if item.strip()]
    malformed = [item for item in items if "=" not in item]
    if malformed:
        raise ValueError(f"--params items {malformed} are not key=value pairs.")
    return OmegaConf.to_container(OmegaConf.from_dotlist(items))


def use_session_parameters(parameters: dict[str, Any]) -> None:
    """Build the project's pipelines from `parameters`, those of the session being created."""
    global _session_parameters  # noqa: PLW0603 (the one hand-over from Kedro's session)
    from kedro.framework.project import pipelines

    if parameters != _session_parameters:
        _session_parameters = parameters
        pipelines.configure(REGISTRY_MODULE)  # forget pipelines built from other parameters


def pipeline_parameters() -> dict[str, Any]:
    """The parameters that shape the pipelines: the session's, else the default environment's."""
    return _session_parameters if _session_parameters is not None else load_parameters()
