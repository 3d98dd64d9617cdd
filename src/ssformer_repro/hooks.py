"""Project hooks: check the configuration first, then an MLflow parent run per ``kedro run``."""

from __future__ import annotations

from typing import Any

from kedro.framework.hooks import hook_impl


class MlflowRunHook:
    """Open one MLflow run per ``kedro run``; training nodes nest one child run per model."""

    def __init__(self) -> None:
        self._tracking: dict[str, Any] = {}

    @hook_impl
    def after_context_created(self, context) -> None:
        self._tracking = context.config_loader["parameters"].get("tracking", {})

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline, catalog) -> None:
        if not self._tracking.get("enabled", True):
            return
        import mlflow

        from ssformer_repro.tracking import configure_tracking, git_commit

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
    def after_pipeline_run(self, run_params: dict[str, Any], pipeline, catalog) -> None:
        self._end_run("FINISHED")

    @hook_impl
    def on_pipeline_error(self, error: Exception, run_params: dict[str, Any], pipeline, catalog):
        self._end_run("FAILED")

    def _end_run(self, status: str) -> None:
        if not self._tracking.get("enabled", True):
            return
        import mlflow

        while mlflow.active_run() is not None:
            mlflow.end_run(status=status)


class ConfigurationCheckHook:
    """Fail in seconds, listing every problem, when the parameters of a run cannot work."""

    def __init__(self) -> None:
        self._parameters: dict[str, Any] = {}

    @hook_impl
    def after_context_created(self, context) -> None:
        self._parameters = context.params

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline, catalog) -> None:
        from ssformer_repro.config_checks import ConfigurationError, check_parameters

        namespaces = {node.namespace for node in pipeline.nodes if node.namespace}
        datasets = sorted(ns for ns in namespaces if ns in (self._parameters.get("datasets") or {}))
        runs = sorted(ns for ns in namespaces if ns.count(".") == 2)
        problems = check_parameters(self._parameters, datasets, runs)
        if problems:
            raise ConfigurationError(
                f"{len(problems)} problem(s) in the parameters (env {run_params['env']!r}); "
                "nothing was run:\n- " + "\n- ".join(problems)
            )
