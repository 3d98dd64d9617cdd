"""The parameters a `kedro run --env E --params P` sees: the one function that reads them.

Pipeline registration (the grid decides the pipelines' shape), the grid command line, the DVC
stage inputs and the benchmark all call `load_parameters`. It builds the config loader that
`settings.py` uses (defined here), on the `conf` folder, exactly as a Kedro session does.

Pipelines are built from the parameters of the session that runs them: the project's context
class, `ProjectContext` (config/context.py, settings.CONTEXT_CLASS), hands them over with `use_session_parameters`
when a session creates it, before anything reads the pipelines; kedro-viz, which runs no hooks,
creates it too. Outside a session (for example `kedro registry list`) the pipelines are built
from `load_parameters()` of the default environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kedro.config import OmegaConfigLoader
from omegaconf import OmegaConf

from ssformer_repro.config.schema import merge_settings

REGISTRY_MODULE = "ssformer_repro.pipeline_registry"
CONF_SOURCE = "conf"  # Kedro's default, which settings.py keeps


class ChoiceAwareConfigLoader(OmegaConfigLoader):
    """Kedro's OmegaConfigLoader, whose parameters merge as `config.schema.merge_settings` does.

    Kedro's soft merge keeps the options of a choice that an environment, conf/local or
    `--params` replaces (`scheduler: {name: warmup_step}` over base's poly would keep poly's
    `power`); here a changed `name` or `strategy` replaces its block.
    """

    def _merge_and_resolve(self, key: str, config_per_file: dict) -> dict[str, Any]:
        if key != "parameters" or not config_per_file:
            return super()._merge_and_resolve(key, config_per_file)
        files = [OmegaConf.to_container(config) for config in config_per_file.values()]
        merged: dict[str, Any] = {}
        for content in [*files, dict(self.runtime_params or {})]:
            merged = merge_settings(merged, content)
        return OmegaConf.to_container(OmegaConf.create(merged), resolve=True)

    def _merge_configs(self, config: dict, env_config: dict, key: str, env_path: str) -> Any:
        if key != "parameters":
            return super()._merge_configs(config, env_config, key, env_path)
        return merge_settings(config, env_config)


# settings.py's CONFIG_LOADER_CLASS and CONFIG_LOADER_ARGS:
CONFIG_LOADER_CLASS = ChoiceAwareConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # An environment (e.g. `demo`) overrides single parameters, not whole top-level blocks.
    "merge_strategy": {"parameters": "soft"},
}

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
    return project_config(project_path, env, params)["parameters"]


def project_config(
    project_path: str | Path | None = None,
    env: str | None = None,
    params: Mapping[str, Any] | None = None,
) -> OmegaConfigLoader:
    """The config loader a Kedro session of `kedro run --env <env> --params <params>` builds in
    `project_path` (arguments as for `load_parameters`): its `parameters`, `globals`, ..."""
    from kedro.utils import find_kedro_project

    project = Path(project_path) if project_path is not None else find_kedro_project(Path.cwd())
    if project is None:
        raise FileNotFoundError(
            f"{Path.cwd()} is not inside a Kedro project (no pyproject.toml with [tool.kedro]); "
            "run from the project's root or pass its path."
        )
    return CONFIG_LOADER_CLASS(
        conf_source=str(project / CONF_SOURCE),
        env=env or os.getenv("KEDRO_ENV"),
        runtime_params=dict(params or {}),
        **CONFIG_LOADER_ARGS,
    )


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
