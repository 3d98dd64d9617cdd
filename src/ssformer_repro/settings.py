"""Project settings (https://docs.kedro.org/en/stable/configure/configuration_basics/)."""

from ssformer_repro.hooks import MlflowRunHook
from ssformer_repro.project_config import ProjectConfigLoader

HOOKS = (MlflowRunHook(),)

CONFIG_LOADER_CLASS = ProjectConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # An environment (e.g. `demo`) overrides single parameters, not whole top-level blocks.
    "merge_strategy": {"parameters": "soft"},
}
