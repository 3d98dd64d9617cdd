"""The settings of one training run: `TrainingSettings` (the `training` parameter block), what
may change on resume, and how "auto" settings resolve."""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field, NonNegativeFloat, NonNegativeInt, PositiveInt

from ssformer_repro.settings_types import AUTO, AmpMode, BoolOrAuto, Settings
from ssformer_repro.training.loss import LOSS_OPTIONS
from ssformer_repro.training.schedules import SCHEDULE_OPTIONS

# A `name` and that choice's options: a schedule of schedules.py, a loss of loss.py.
Schedule = Annotated[Union[tuple(SCHEDULE_OPTIONS.values())], Field(discriminator="name")]  # noqa: UP007
Loss = Annotated[Union[tuple(LOSS_OPTIONS.values())], Field(discriminator="name")]  # noqa: UP007

# Settings that may differ from those of the last.pt being resumed.
RESUMABLE_CHANGES = frozenset(
    {"epochs", "on_changed_settings", "checkpoint_every_seconds", "threads"}
)
# What compile: "auto" means on every device, until a measurement shows compiling pays back.
COMPILE_PAYS_BACK = False


class TrainingSettings(Settings):
    """One training run. "auto" follows the device (on for CUDA, off for CPU), except `compile`,
    whose "auto" is off everywhere until a GPU measurement shows it pays back."""

    epochs: PositiveInt
    batch_size: PositiveInt
    lr: Annotated[float, Field(gt=0)] = 1e-4
    weight_decay: NonNegativeFloat = 0.01  # AdamW's default, which the official code keeps
    scheduler: Schedule = SCHEDULE_OPTIONS["poly"]()
    loss: Loss = LOSS_OPTIONS["bce_dice"]()
    num_workers: NonNegativeInt = 0
    seed: NonNegativeInt = 0
    device: str = AUTO  # "auto", "cpu", "cuda" or "cuda:N"
    threads: PositiveInt | None = None  # torch's CPU threads; None: torch's default
    amp: AmpMode = AUTO
    channels_last: BoolOrAuto = AUTO
    fused_optimizer: BoolOrAuto = AUTO  # AdamW's fused kernel (CUDA and CPU)
    pin_memory: BoolOrAuto = AUTO
    compile: BoolOrAuto = AUTO
    val_threshold: Annotated[float, Field(gt=0, lt=1)] = 0.5
    val_every: PositiveInt = 1
    log_every: PositiveInt = 10
    # Write last.pt, last.json and best.pt after an epoch only when this many seconds have
    # passed since the last write, and always after the final epoch. 0: after every epoch.
    checkpoint_every_seconds: NonNegativeFloat = 0.0
    distributed_backend: Literal["auto", "nccl", "gloo"] = AUTO
    # When last.pt was made from other settings or inputs: "refuse" (stop and say so) or
    # "restart" (move last.pt, last.json and best.pt to superseded/<time>/, train afresh).
    on_changed_settings: Literal["refuse", "restart"] = "refuse"


def resolve_auto(setting: bool | str, auto_value: bool) -> bool:
    """A true/false/"auto" setting as a bool, "auto" meaning `auto_value`."""
    return auto_value if setting == AUTO else bool(setting)
