"""One run's configuration: its identity and its own settings, resolved and checked once.

The start-of-run check (config/checks.py, `check_configuration`) builds a `RunConfig` for every run a
`kedro run` is about to execute, from the shared blocks with the run's `reproduce.overrides`
entries merged in (`run_settings`); the hook hands each to its run's nodes as the dataset
`<run>.run_config`, and training, evaluation, predict and export read their settings from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
from pydantic import ConfigDict

from ssformer_repro.evaluation.settings import EvaluationSettings
from ssformer_repro.grid.runs import GridRun, run_settings
from ssformer_repro.models.settings import ModelSettings
from ssformer_repro.polyps.settings import AugmentationSettings
from ssformer_repro.settings_types import Settings
from ssformer_repro.storage.digests import bytes_digest, result_code_digests
from ssformer_repro.tracking.settings import TrackingSettings
from ssformer_repro.training.settings import TrainingSettings


class RunConfig(Settings):
    """A run of the grid and the settings it runs with (frozen, checked)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    run: GridRun
    training: TrainingSettings
    model: ModelSettings
    augmentation: AugmentationSettings
    evaluation: EvaluationSettings
    tracking: TrackingSettings


# The blocks a run's `reproduce.overrides` entry may change.
RUN_BLOCKS = ("training", "model", "augmentation", "evaluation")


def run_values(run: GridRun, parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The raw values of `run`'s configuration: shared blocks, its overrides merged in."""
    shared = {block: parameters.get(block) or {} for block in RUN_BLOCKS}
    return {
        "run": run,
        **run_settings(run, shared, parameters.get("reproduce") or {}),
        "tracking": parameters.get("tracking") or {},
    }


def resolve_run(run: GridRun, parameters: Mapping[str, Any]) -> RunConfig:
    """`run`'s configuration from the session's parameters (a pydantic ValidationError if bad)."""
    return RunConfig.model_validate(run_values(run, parameters))


def result_inputs(config: RunConfig, split_manifest: pd.DataFrame) -> dict[str, Any]:
    """What every result of a run depends on besides the settings of the step that makes it:
    its augmentation, its split manifest and the code that computes it. The training
    fingerprint (training.run.run_inputs) and the test scores' key (evaluation_key) share it."""
    return {
        "augmentation": config.augmentation.model_dump(mode="json"),
        "manifest": bytes_digest([split_manifest.to_csv(index=False).encode()]),
        "code": result_code_digests(),
    }
