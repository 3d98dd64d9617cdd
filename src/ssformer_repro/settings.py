"""Project settings (https://docs.kedro.org/en/stable/configure/configuration_basics/)."""

from ssformer_repro.config.context import ProjectContext
from ssformer_repro.config.loader import CONFIG_LOADER_ARGS, CONFIG_LOADER_CLASS
from ssformer_repro.hooks import ConfigurationCheckHook, MlflowRunHook, RunLockHook, RunTimesHook

RUN_TIMES = RunTimesHook()
CONFIGURATION_CHECK = ConfigurationCheckHook()  # cli.py's `kedro run --check` sets check_only

# Hooks run last-in first-out: the configuration is checked, then the outputs are locked
# (docs/reliability.md), before an MLflow run is opened; the timing starts just before the nodes.
HOOKS = (
    RUN_TIMES,
    MlflowRunHook(CONFIGURATION_CHECK, run_times=RUN_TIMES),
    RunLockHook(lock_folder=".locks"),  # under the environment's data_root
    CONFIGURATION_CHECK,
)

# Builds the pipelines from the parameters of the session that creates it (config/loader.py).
CONTEXT_CLASS = ProjectContext

# The config loader and its arguments live in config/loader.py, with `load_parameters`.
__all__ = ["CONFIG_LOADER_ARGS", "CONFIG_LOADER_CLASS", "CONTEXT_CLASS", "HOOKS"]
