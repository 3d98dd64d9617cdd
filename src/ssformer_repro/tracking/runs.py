"""MLflow tracking: one parent run per ``kedro run``, one nested child run per trained model.

The tracking URI is ``MLFLOW_TRACKING_URI`` when set, else ``tracking.uri`` from parameters
(``sqlite:///mlflow.db`` by default: MLflow 3 refuses the old ``./mlruns`` file store).
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow

from ssformer_repro.tracking.settings import TrackingSettings

# Parameter names that look like credentials: their values are never sent to MLflow.
SECRET_NAME = re.compile(r"password|passwd|secret|token|api_?key|access_?key|credential", re.I)
REDACTED = "<redacted>"


def configure_tracking(tracking: TrackingSettings) -> str:
    """Point MLflow at the configured store and experiment; return the tracking URI used."""
    uri = os.environ.get("MLFLOW_TRACKING_URI") or tracking.uri
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(tracking.experiment)
    return uri


def git_commit(project_path: str | Path) -> str:
    """The project's git commit (with ``-dirty`` when it has uncommitted changes), or ``unknown``."""
    try:
        described = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=40"],
            cwd=project_path,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return described.stdout.strip()


def flatten(settings: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested settings as MLflow parameters: ``{"training.scheduler.name": "poly", ...}``.

    Values under credential-like names (password, token, secret, ...) become ``<redacted>``.
    """
    flat: dict[str, Any] = {}
    for key, value in settings.items():
        name = f"{prefix}{key}"
        if SECRET_NAME.search(str(key)):
            flat[name] = REDACTED
        elif isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


class ChildRun:
    """A nested MLflow run for one trained model, or a no-op when tracking is disabled."""

    def __init__(self, run_id: str | None) -> None:
        self.run_id = run_id

    def log_epoch(self, row: dict[str, Any]) -> None:
        """Log one epoch's history row (train loss, validation scores, lr) at step = epoch."""
        if self.run_id is None:
            return
        metrics = {k: float(v) for k, v in row.items() if k != "epoch" and v is not None}
        mlflow.log_metrics(metrics, step=int(row["epoch"]), run_id=self.run_id)

    def log_metrics(self, metrics: dict[str, float]) -> None:
        """Log final metrics (e.g. the test scores)."""
        if self.run_id is not None:
            mlflow.log_metrics(metrics, run_id=self.run_id)

    def logged_metrics(self) -> dict[str, float]:
        """The latest value of every metric the run holds ({} when tracking is off)."""
        if self.run_id is None:
            return {}
        return dict(mlflow.MlflowClient().get_run(self.run_id).data.metrics)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        """Copy a file (checkpoint, table) into the run's artifacts."""
        if self.run_id is not None:
            mlflow.log_artifact(str(path), artifact_path=artifact_path, run_id=self.run_id)

    def log_file_once(self, data: bytes, name: str) -> None:
        """Write `data` as the run's artifact `name` (e.g. a PNG figure), unless the run holds
        these very bytes there already (its tag `md5.<name>` says what was logged last)."""
        if self.run_id is None:
            return
        client = mlflow.MlflowClient()
        tag, digest = f"md5.{name}", hashlib.md5(data).hexdigest()
        if client.get_run(self.run_id).data.tags.get(tag) == digest:
            return
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / name
            path.write_bytes(data)
            client.log_artifact(self.run_id, str(path))
        client.set_tag(self.run_id, tag, digest)


@contextmanager
def child_run(
    tracking: TrackingSettings,
    run_name: str,
    params: dict[str, Any] | None = None,
    resume_run_id: str | None = None,
    tags: dict[str, Any] | None = None,
) -> Iterator[ChildRun]:
    """Open (and close) a nested child run of the active ``kedro run``'s MLflow run.

    `tags` (a grid run's dimensions: dataset, backbone, head, seed, fold) are set as
    `ssformer.<name>` tags, so the MLflow UI can filter and group runs by seed or fold.

    With `resume_run_id` (an interrupted run's child, recorded in its last.pt), that run is
    continued when the store still has it, so one model keeps one MLflow run; its parameters
    were logged when it started.
    """
    if not tracking.enabled:
        yield ChildRun(None)
        return
    configure_tracking(tracking)
    nested = mlflow.active_run() is not None
    if resume_run_id is not None and run_exists(resume_run_id):
        with mlflow.start_run(run_id=resume_run_id, nested=nested) as run:
            yield ChildRun(run.info.run_id)
        return
    with mlflow.start_run(run_name=run_name, nested=nested) as run:
        dimensions = {f"ssformer.{k}": v for k, v in (tags or {}).items() if v is not None}
        mlflow.set_tags({"ssformer.run": run_name, **dimensions})
        if params:
            mlflow.log_params(flatten(params))
        yield ChildRun(run.info.run_id)


def run_exists(run_id: str) -> bool:
    """Whether the configured MLflow store holds the run `run_id`."""
    try:
        mlflow.MlflowClient().get_run(run_id)
    except mlflow.exceptions.MlflowException:
        return False
    return True


def existing_child_run(tracking: TrackingSettings, run_id: str | None) -> ChildRun:
    """A handle on a child run opened by an earlier node (no-op when tracking is off)."""
    if not tracking.enabled or run_id is None:
        return ChildRun(None)
    configure_tracking(tracking)
    return ChildRun(run_id)
