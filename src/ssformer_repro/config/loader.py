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

import yaml
from kedro.config import MissingConfigException, OmegaConfigLoader
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ssformer_repro.errors import UserError
from ssformer_repro.settings_types import merge_settings

REGISTRY_MODULE = "ssformer_repro.pipeline_registry"
CONF_SOURCE = "conf"  # Kedro's default, which settings.py keeps


# What conf/local adds over every environment: the settings of runs and the secrets. Where an
# environment reads and writes (`globals`, the catalog) stays its own: conf/local's apply to
# the default environment alone, so that `--env=demo` never writes into the study's folders.
LOCAL_OVER_EVERY_ENV = ("parameters", "credentials")


class UnknownEnvironmentError(UserError, MissingConfigException):
    """`--env` names no folder of `conf/`."""


class ChoiceAwareConfigLoader(OmegaConfigLoader):
    """Kedro's OmegaConfigLoader, with the user's conf/local over every environment and the
    parameters merged as `settings_types.merge_settings` does.

    Layers, each over the one before: conf/base, the environment (`--env`, default `local`),
    then conf/local's parameters and credentials when `--env` names another environment, then
    `--params` (conf/README.md). Kedro itself reads conf/local only when no `--env` is given.

    Kedro's soft merge keeps the options of a choice that an environment, conf/local or
    `--params` replaces (`scheduler: {name: warmup_step}` over base's poly would keep poly's
    `power`); here a changed `name` or `strategy` replaces its block.
    """

    def __init__(self, conf_source: str | Path, env: str | None = None, *args, **kwargs) -> None:
        self.local_over_env = kwargs.pop("local_over_env", True)
        folder = Path(str(conf_source))
        if env and folder.is_dir() and not (folder / env).is_dir():  # a folder, not an archive
            known = sorted(path.name for path in folder.iterdir() if path.is_dir())
            raise UnknownEnvironmentError(
                f"--env={env}: there is no environment {env!r} (no folder {folder / env}); "
                f"the environments are the folders of {folder}: {', '.join(known)}."
            )
        super().__init__(conf_source, env, *args, **kwargs)

    def local_layer_path(self) -> Path | None:
        """conf/local when it is layered over another environment, else None."""
        run_env = self.env or self.default_run_env
        if not self.local_over_env or not self.default_run_env or run_env == self.default_run_env:
            return None
        path = Path(self._get_conf_env_path(self.default_run_env))
        return path if self._protocol == "file" and path.is_dir() else None

    def files_of(self, folder: str | Path, key: str) -> list[Path]:
        """The configuration files of `folder` that Kedro reads for `key` (its patterns)."""
        if not Path(folder).is_dir():
            return []
        found = {
            Path(path)
            for pattern in self.config_patterns[key]
            for path in self._fs.glob((Path(folder) / pattern).as_posix())
        }
        return sorted(
            path
            for path in found
            if self._is_valid_config_path(path)
            and not (self.ignore_hidden and self._is_hidden(str(path)))
        )

    def local_files(self, key: str) -> list[Path]:
        """The files of conf/local this loader reads for `key`: as the run environment, or
        layered over another one (parameters and credentials)."""
        if (self.env or self.default_run_env) == self.default_run_env:
            return self.files_of(self._get_conf_env_path(self.default_run_env), key)
        local = self.local_layer_path()
        return self.files_of(local, key) if local and key in LOCAL_OVER_EVERY_ENV else []

    def unread_files(self) -> dict[Path, str | None]:
        """Configuration files (YAML, JSON) in conf/base, the environment and conf/local that
        this loader reads for no key, each with the key whose patterns its name matches: None
        for a misnamed file, 'catalog' or 'globals' for conf/local's under another
        environment."""
        run_env = self.env or self.default_run_env
        folders = {self.base_env, run_env, self.default_run_env} - {""}
        matching: dict[Path, str] = {}
        for folder in folders:
            for key in self.config_patterns:
                for path in self.files_of(self._get_conf_env_path(folder), key):
                    matching.setdefault(path, key)
        local = Path(self._get_conf_env_path(self.default_run_env))
        read = {
            path
            for path in matching
            if not path.is_relative_to(local) or path in self.local_files(matching[path])
        }
        every = {
            path
            for folder in folders
            for path in Path(self._get_conf_env_path(folder)).rglob("*")
            if self._is_valid_config_path(path) and not self._is_hidden(str(path))
        }
        return {path: matching.get(path) for path in sorted(every - read)}

    def layers(self) -> str:
        """The parameters' layers, lowest first: 'conf/base < conf/demo < conf/local
        (parameters_x.yml) < --params (training)'."""
        conf = Path(self.conf_source)
        run_env = self.env or self.default_run_env
        names = [self.base_env] + ([run_env] if run_env != self.base_env else [])
        shown = [f"{conf.name}/{name}" for name in names if name != self.default_run_env]
        local = self.local_files("parameters")
        if local:
            files = ", ".join(path.name for path in local)
            shown.append(f"{conf.name}/{self.default_run_env} ({files})")
        if self.runtime_params:
            shown.append(f"--params ({', '.join(sorted(self.runtime_params))})")
        return " < ".join(shown)

    def __getitem__(self, key: str) -> dict[str, Any]:
        local = self.local_layer_path()
        layered = key not in self.data and local is not None and self.local_files(key)
        try:
            config = super().__getitem__(key)
        except MissingConfigException:
            if not layered:
                raise
            config = {}  # conf/local alone holds this key's files (e.g. credentials)
        if not layered:
            return config
        files = self._read_dir_configs(
            str(local), self.config_patterns[key], key, set(), key == "credentials"
        )
        return self._merge_configs(config, self._merge_and_resolve(key, files), key, str(local))

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


def tracked_parameters(project_path: str | Path, env: str | None = None) -> dict[str, Any]:
    """The parameters of conf/base and the environment `env` alone, without conf/local and
    `--params`: the tracked files, which a DVC pipeline's `vars` read."""
    return CONFIG_LOADER_CLASS(
        conf_source=str(Path(project_path) / CONF_SOURCE),
        env=env or CONFIG_LOADER_ARGS["base_env"],
        local_over_env=False,
        **CONFIG_LOADER_ARGS,
    )["parameters"]


def parse_params(text: str | None) -> dict[str, Any]:
    """`--params` text as `kedro run` reads it (ssformer_repro/cli.py): ``key=value`` items
    separated by commas, each value in YAML, e.g. ``"training.epochs=2,reproduce.heads=[pld,sed]"``.

    Commas inside ``[...]`` or ``{...}`` belong to their value, so lists and mappings can be
    given; Kedro's own `--params` splits at every comma (kedro-org/kedro#2552).
    """
    items = [item.strip() for item in split_outside_brackets(text or "") if item.strip()]
    malformed = [item for item in items if "=" not in item or not item.split("=", 1)[0].strip()]
    if malformed:
        raise ValueError(
            f"--params items {malformed} are not key=value pairs; separate the pairs with commas "
            "and write lists in brackets, e.g. training.epochs=2,reproduce.seeds=[42,43]."
        )
    dotlist = ["=".join(part.strip() for part in item.split("=", 1)) for item in items]
    try:
        return OmegaConf.to_container(OmegaConf.from_dotlist(dotlist))
    except (yaml.YAMLError, OmegaConfBaseException) as error:
        problem = " ".join(str(error).split())
        raise ValueError(f"--params {text!r} is not key=value pairs of YAML: {problem}") from error


def split_outside_brackets(text: str) -> list[str]:
    """`text` split at the commas that no ``[...]`` or ``{...}`` encloses."""
    parts, depth, start = [], 0, 0
    for index, char in enumerate(text):
        if char in "[{":
            depth += 1
        elif char in "]}":
            depth = max(depth - 1, 0)
        elif char == "," and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    return [*parts, text[start:]]


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
