"""Every hook of the project, in the order settings.py registers them.

- `ConfigurationCheckHook`: checks the configuration before any work;
- `RunLockHook`: locks the namespaces a run writes;
- `MlflowRunHook`: an MLflow parent run per `kedro run`, and each run's test results logged to
  its child run;
- `RunTimesHook`: the time each node and each dataset load or save took.
"""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kedro.framework.hooks import hook_impl

if TYPE_CHECKING:
    from ssformer_repro.config.checks import CheckedConfiguration
    from ssformer_repro.tracking.settings import TrackingSettings

logger = logging.getLogger(__name__)
# Reporting outputs that MlflowRunHook logs with the parent run of a `kedro run`.
VERDICT_OUTPUTS = frozenset({"reporting.forest_plot", "reporting.verdict_markdown"})


class RunTimesHook:
    """Time every node and every dataset load and save of a ``kedro run``.

    The rest of the run's wall time is start-up (imports, configuration, hooks) and the runner
    between nodes (docs/benchmarks.md). The times are logged when the pipeline ends and stored
    with the MLflow parent run as ``run_times.json`` (by ``MlflowRunHook``). Nodes run in this
    process (the sequential or thread runner).
    """

    def __init__(self) -> None:
        self.before_pipeline_run()

    @hook_impl
    def before_pipeline_run(self) -> None:
        self._pipeline_started = time.perf_counter()
        self._started: dict[tuple[str, str], float] = {}
        self.node_seconds: dict[str, float] = {}
        self.node_functions: dict[str, str] = {}
        self.dataset_seconds = 0.0

    @hook_impl
    def before_node_run(self, node) -> None:
        self._started["node", node.name] = time.perf_counter()

    @hook_impl
    def after_node_run(self, node) -> None:
        self.node_seconds[node.name] = time.perf_counter() - self._started.pop(("node", node.name))
        self.node_functions[node.name] = node.func.__name__

    @hook_impl
    def before_dataset_loaded(self, dataset_name: str) -> None:
        self._started["dataset", dataset_name] = time.perf_counter()

    @hook_impl
    def after_dataset_loaded(self, dataset_name: str) -> None:
        self.dataset_seconds += time.perf_counter() - self._started.pop(("dataset", dataset_name))

    @hook_impl
    def before_dataset_saved(self, dataset_name: str) -> None:
        self.before_dataset_loaded(dataset_name)

    @hook_impl
    def after_dataset_saved(self, dataset_name: str) -> None:
        self.after_dataset_loaded(dataset_name)

    @hook_impl
    def after_pipeline_run(self) -> None:
        times = self.summary()
        by_function: dict[str, float] = defaultdict(float)
        for name, seconds in self.node_seconds.items():
            by_function[self.node_functions[name]] += seconds
        ranked = sorted(by_function.items(), key=lambda item: -item[1])
        logger.info(
            "Pipeline %.1f s: nodes %.1f s (%s), loading and saving datasets %.1f s, the runner "
            "and hooks between nodes %.1f s.",
            times["pipeline_seconds"],
            times["nodes_seconds"],
            ", ".join(f"{function} {seconds:.1f} s" for function, seconds in ranked[:5]),
            times["dataset_seconds"],
            times["other_seconds"],
        )

    def summary(self) -> dict[str, Any]:
        """Seconds since the pipeline started: in each node, in dataset I/O and elsewhere."""
        pipeline_seconds = time.perf_counter() - self._pipeline_started
        nodes_seconds = sum(self.node_seconds.values())
        return {
            "pipeline_seconds": pipeline_seconds,
            "nodes_seconds": nodes_seconds,
            "dataset_seconds": self.dataset_seconds,
            "other_seconds": pipeline_seconds - nodes_seconds - self.dataset_seconds,
            "node_seconds": dict(self.node_seconds),
        }


class MlflowRunHook:
    """Open one MLflow run per ``kedro run``; training nodes nest one child run per model."""

    def __init__(
        self, check: ConfigurationCheckHook, run_times: RunTimesHook | None = None
    ) -> None:
        self._check = check
        # The `tracking` block, once the configuration check passed.
        self._tracking: TrackingSettings | None = None
        self._run_times = run_times

    @property
    def _enabled(self) -> bool:
        return self._tracking is not None and self._tracking.enabled

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline, catalog) -> None:
        # pluggy calls the hook registered last first: the check has run, and passed.
        if self._check.checked is None:
            raise RuntimeError(
                "settings.HOOKS must list ConfigurationCheckHook after MlflowRunHook"
            )
        self._tracking = self._check.checked.parameters.tracking
        if not self._enabled:
            return
        import mlflow

        from ssformer_repro.tracking.runs import configure_tracking, git_commit

        configure_tracking(self._tracking)
        names = run_params.get("pipeline_names") or ["__default__"]
        mlflow.start_run(run_name=f"kedro run {'+'.join(names)} ({run_params['env'] or 'local'})")
        mlflow.set_tags(
            {
                "kedro.session_id": run_params["run_id"],
                "kedro.env": str(run_params["env"]),
                "kedro.pipelines": ",".join(names),
                "kedro.namespaces": ",".join(run_params.get("namespaces") or []),
                "git_commit": git_commit(run_params["project_path"]),
            }
        )

    @hook_impl
    def after_node_run(self, node, inputs: dict[str, Any], outputs: dict[str, Any]) -> None:
        """Log a grid run's test metrics and example figure to that run's MLflow child run, and
        the verdict (its table and forest plot) to the parent run."""
        if not self._enabled or not node.namespace:
            return
        if VERDICT_OUTPUTS & outputs.keys():
            self._log_verdict(outputs)
            return
        summary = inputs.get(f"{node.namespace}.training_summary")
        metrics = outputs.get(f"{node.namespace}.test_metrics")
        figure = outputs.get(f"{node.namespace}.prediction_examples")  # PNG bytes
        if summary is None or (metrics is None and figure is None):
            return
        from ssformer_repro.tracking.runs import existing_child_run

        tracked = existing_child_run(self._tracking, summary.get("mlflow_run_id"))
        already = tracked.logged_metrics().get("test_mdice")
        if metrics is not None and already != metrics["mdice"]:  # once per result
            boundary = {
                f"test_{name}": float(metrics[name])
                for name in ("mnsd", "mhd95", "hd95_undefined")
                if math.isfinite(metrics[name])  # mhd95 is NaN when every HD95 is undefined
            }
            tracked.log_metrics(
                {"test_mdice": metrics["mdice"], "test_miou": metrics["miou"]}
                | boundary
                | {f"test_{name}": value for name, value in metrics["toolbox"].items()}
            )
        if figure is not None:
            tracked.log_file_once(figure, "test_predictions.png")

    def _log_verdict(self, outputs: dict[str, Any]) -> None:
        import mlflow

        if mlflow.active_run() is None:
            return
        if "reporting.forest_plot" in outputs:
            mlflow.log_figure(outputs["reporting.forest_plot"], "forest_plot.png")
        if "reporting.verdict_markdown" in outputs:
            mlflow.log_text(outputs["reporting.verdict_markdown"], "verdict.md")

    @hook_impl
    def after_pipeline_run(self, run_params: dict[str, Any], pipeline, catalog) -> None:
        if self._run_times is not None and self._enabled:
            import mlflow

            mlflow.log_dict(self._run_times.summary(), "run_times.json")
        self._end_run("FINISHED")

    @hook_impl
    def on_pipeline_error(self, error: Exception, run_params: dict[str, Any], pipeline, catalog):
        self._end_run("FAILED")

    def _end_run(self, status: str) -> None:
        enabled, self._tracking = self._enabled, None  # the next session checks its own
        if not enabled:
            return
        import mlflow

        while mlflow.active_run() is not None:
            mlflow.end_run(status=status)


class ConfigurationCheckHook:
    """Fail in seconds, listing every problem, when the parameters of a run cannot work.

    Says which files the parameters come from, then checks the datasets and grid runs the
    pipeline is about to run (docs/reliability.md), the files and settings the user gave that
    this environment would not read (conf/README.md), and the runs' folders: a run trained for
    more epochs than asked is refused here, not at its train node. The error is a click
    exception, so `kedro run` prints the list and exits 1, no traceback.
    """

    def __init__(self) -> None:
        self._parameters: dict[str, Any] = {}
        self._loader = None
        # What the check found when it passed: the typed parameters and runs (MlflowRunHook).
        self.checked: CheckedConfiguration | None = None
        # `kedro run --check` (cli.py): stop after a passed check, saying what would run.
        self.check_only = False

    @hook_impl
    def after_context_created(self, context) -> None:
        self._loader = context.config_loader
        self._parameters = context.config_loader["parameters"]

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline, catalog) -> None:
        from ssformer_repro.config.checks import (
            ConfigurationError,
            check_configuration,
            resume_problems,
            typed_parameter,
            usage_problems,
            verdict_problems,
        )
        from ssformer_repro.grid.runs import parameter_grid

        self.checked = None
        env = run_params["env"]
        where = f"--env={env}" if env else "the default environment (no --env)"
        logger.info("Parameters of %s: %s", where, self._loader.layers())
        namespaces = {node.namespace for node in pipeline.nodes if node.namespace}
        datasets = sorted(ns for ns in namespaces if ns in (self._parameters.get("datasets") or {}))
        try:
            grid = parameter_grid(self._parameters)
        except (ValueError, KeyError, TypeError):
            grid = []  # check_configuration reports why
        runs = [run for run in grid if run.namespace in namespaces]
        problems = self._unread_problems(where)
        checked = check_configuration(self._parameters, datasets, runs)
        problems += checked.problems
        pipeline_names = run_params.get("pipeline_names") or ["__default__"]
        problems += usage_problems(self._parameters, pipeline_names)
        if "reporting" in namespaces and grid and not problems:
            problems += verdict_problems(grid)
        if not problems:
            trained = {node.namespace for node in pipeline.nodes if node.name.endswith(".train")}
            folders = {
                run.name: catalog[f"{run.namespace}.run_folder"].load()
                for run in runs
                if run.namespace in trained
            }
            problems += resume_problems([checked.runs[name] for name in folders], folders)
        if problems:
            raise ConfigurationError(problems, f"the parameters (env {run_params['env']!r})")
        if self.check_only:
            import click

            click.echo(would_run_summary(where, self._loader.layers(), datasets, runs, pipeline))
            raise click.exceptions.Exit(0)
        # The nodes receive what was checked here, typed: each parameter block (the block's
        # settings class, e.g. `params:statistics` a StatisticsSettings) and each run's
        # configuration; `parameters` (all of them) stays as Kedro loaded it.
        for name in sorted(pipeline.inputs()):
            if not name.startswith("params:"):
                continue
            value = typed_parameter(checked.parameters, name)
            if name in catalog:
                catalog.save(name, value)
            else:  # a block left out of the YAML: its defaults
                catalog[name] = value
        for run in runs:
            catalog.save(f"{run.namespace}.run_config", checked.runs[run.name])
        self.checked = checked

    def _unread_problems(self, where: str) -> list[str]:
        """Files and settings given that nothing of this environment reads."""
        import yaml

        from ssformer_repro.config.checks import unread_dataset_problems, unread_file_problems

        loader = self._loader
        problems = unread_file_problems(loader.unread_files(), where)
        given = {
            f"conf/local/{path.name}": yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            for path in loader.local_files("parameters")
        }
        given["--params"] = dict(loader.runtime_params or {})
        try:
            return problems + unread_dataset_problems(self._parameters, given, where)
        except (KeyError, TypeError):
            return problems  # malformed blocks: check_configuration reports them


def would_run_summary(where: str, layers: str, datasets: list[str], runs: list, pipeline) -> str:
    """What `kedro run --check` prints: the settings' files and what the run would do."""
    others = sorted(
        {node.namespace or node.name for node in pipeline.nodes}
        - set(datasets)
        - {run.namespace for run in runs}
    )
    lines = [
        f"The configuration of {where} passed its check; nothing was run.",
        f"parameters: {layers}",
        f"datasets processed: {', '.join(datasets) or 'none'}",
        f"runs trained or evaluated ({len(runs)}): {', '.join(run.name for run in runs) or 'none'}",
        f"other nodes and namespaces: {', '.join(others) or 'none'}",
    ]
    return "\n".join(lines)


class RunLockHook:
    """Lock every namespace a `kedro run` writes before its first node, release after its last.

    Two runs of different namespaces (e.g. one grid run per GPU) go ahead side by side; a second
    run of a namespace that is being written is refused before it does any work. The locks live
    in `<data_root>/.locks` (the environment's `data_root` global), so two environments writing
    apart (the demo, the study) never block each other.
    """

    def __init__(self, lock_folder: str = ".locks") -> None:
        self._lock_folder = Path(lock_folder)
        self._data_root = Path("data")
        self._held: ExitStack | None = None

    @hook_impl
    def after_context_created(self, context) -> None:
        self._data_root = Path(context.config_loader["globals"].get("data_root", "data"))

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline, catalog) -> None:
        from ssformer_repro.storage.locks import namespace_lock_path, run_locks

        folder = self._data_root / self._lock_folder
        if not folder.is_absolute():
            folder = Path(run_params.get("project_path") or ".") / folder
        namespaces = sorted({node.namespace or "__default__" for node in pipeline.nodes})
        stack = ExitStack()
        stack.enter_context(run_locks(namespace_lock_path(folder, name) for name in namespaces))
        self._held = stack

    @hook_impl
    def after_pipeline_run(self, run_params: dict[str, Any], pipeline, catalog) -> None:
        self._release()

    @hook_impl
    def on_pipeline_error(self, error: Exception, run_params: dict[str, Any], pipeline, catalog):
        self._release()

    def _release(self) -> None:
        if self._held is not None:
            self._held.close()
            self._held = None
