"""The `tracking` parameter block: where MLflow keeps the study's runs."""

from __future__ import annotations

from ssformer_repro.settings_types import Settings


class TrackingSettings(Settings):
    """MLflow: a parent run per `kedro run`, a child per trained model."""

    enabled: bool = True
    uri: str = "sqlite:///mlflow.db"
    experiment: str = "ssformer-repro"
    log_checkpoints: bool = True
