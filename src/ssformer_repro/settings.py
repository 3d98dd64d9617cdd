"""Project settings (https://docs.kedro.org/en/stable/configure/configuration_basics/)."""

from kedro.config import OmegaConfigLoader

from ssformer_repro.hooks import (
    ConfigurationCheckHook,
    MlflowRunHook,
    RunLockHook,
    RunTimesHook,
    SessionParametersHook,
)

RUN_TIMES = RunTimesHook()

# Hooks run last-in first-out: the pipelines are built from the session's parameters, the
# configuration is checked, then the outputs are locked (docs/reliability.md), before an MLflow
# run is opened; the timing starts just before the nodes.
HOOKS = (
    RUN_TIMES,
    MlflowRunHook(run_times=RUN_TIMES),
    RunLockHook(lock_folder="data/.locks"),
    ConfigurationCheckHook(),
    SessionParametersHook(),
)

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # An environment (e.g. `demo`) overrides single parameters, not whole top-level blocks.
    "merge_strategy": {"parameters": "soft"},
}
