"""The schema of every parameter block, composed from the blocks each package declares.

The blocks of the code that uses them live with it: `training` in training/settings.py (its
schedules and losses declared by their signatures), `model` in models/settings.py (each head's
options declared by the head), `augmentation`, `datasets` and `data_processing` in
polyps/settings.py, `evaluation` in evaluation/settings.py, `statistics` in
reporting/settings.py, `tracking` in tracking/settings.py, `predict` and `export` in
inference/settings.py, `model_sizes` in models/settings.py. The grid's `reproduce` block is
here. All share settings_types.Settings: unknown keys are errors, values are strict.

"Name + options" choices (a schedule, a loss, a split strategy) are discriminated unions: each
choice has its own options, an option of another choice is an error naming it, and choosing
another choice replaces the options of the one it replaces wherever the choice is made (an
environment file, conf/local, --params, a run's override; see `merge_settings`).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, NonNegativeInt, field_validator

from ssformer_repro.evaluation.settings import EvaluationSettings
from ssformer_repro.inference.settings import ExportSettings, PredictSettings
from ssformer_repro.models.backbones import available_backbones
from ssformer_repro.models.heads import available_heads
from ssformer_repro.models.settings import ModelSettings, ModelSizesSettings
from ssformer_repro.polyps.settings import (
    AugmentationSettings,
    DataProcessingSettings,
    DatasetSettings,
)
from ssformer_repro.reporting.settings import StatisticsSettings
from ssformer_repro.settings_types import Settings
from ssformer_repro.tracking.settings import TrackingSettings
from ssformer_repro.training.settings import TrainingSettings

# --- the grid ---------------------------------------------------------------------------------


class ReproduceSettings(Settings):
    """The experiment grid: every dataset x backbone x head is a run; per-run overrides.

    `only` narrows the grid to the runs matching any of its patterns (fnmatch globs on run
    names, or name prefixes such as `kvasir.mit_b2`); from the command line a space-separated
    string, e.g. `--params "reproduce.only=kvasir.mit_b0 clinicdb.*.sed"` (a pattern cannot start
    with `*` there: Kedro reads values as YAML, where `*` starts an alias).
    """

    datasets: list[str]
    backbones: list[str]
    heads: list[str]
    seeds: Annotated[list[NonNegativeInt], Field(min_length=1)]  # training seeds: each a run
    overrides: dict[str, dict[str, Any]] = {}
    only: list[str] | None = None

    @field_validator("only", mode="before")
    @classmethod
    def _split_words(cls, value: Any) -> Any:
        return value.split() if isinstance(value, str) else value

    @field_validator("backbones")
    @classmethod
    def _known_backbones(cls, value: list[str]) -> list[str]:
        return _known(value, available_backbones(), "backbone")

    @field_validator("heads")
    @classmethod
    def _known_heads(cls, value: list[str]) -> list[str]:
        return _known(value, available_heads(), "head")


class Parameters(Settings):
    """All parameters of a `kedro run`."""

    data_processing: DataProcessingSettings
    datasets: dict[str, DatasetSettings]
    augmentation: AugmentationSettings = AugmentationSettings()
    training: TrainingSettings
    model: ModelSettings = ModelSettings()
    evaluation: EvaluationSettings = EvaluationSettings()
    reproduce: ReproduceSettings
    tracking: TrackingSettings = TrackingSettings()
    model_sizes: ModelSizesSettings = ModelSizesSettings()
    statistics: StatisticsSettings = StatisticsSettings()
    predict: PredictSettings = PredictSettings()
    export: ExportSettings = ExportSettings()


def _known(values: list[str], valid: list[str], what: str) -> list[str]:
    unknown = [value for value in values if value not in valid]
    if unknown:
        raise ValueError(f"unknown {what}(s) {unknown}; valid: {valid}")
    return values
