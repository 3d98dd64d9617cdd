"""The settings of one training run, checked when they are built (`TrainingConfig.from_dict`)."""

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields

from ssformer_repro.training.device import AMP_MODES
from ssformer_repro.training.distributed import BACKEND_CHOICES
from ssformer_repro.training.loss import LOSSES
from ssformer_repro.training.schedules import SCHEDULERS

AUTO = "auto"
CHANGED_SETTINGS_POLICIES = ("refuse", "restart")
# Settings that may differ from those of the last.pt being resumed.
RESUMABLE_CHANGES = frozenset({"epochs", "on_changed_settings", "checkpoint_every_seconds"})
# What compile: "auto" means on every device, until a measurement shows compiling pays back.
COMPILE_PAYS_BACK = False


@dataclass(frozen=True)
class TrainingConfig:
    """Settings of one training run; "auto" follows the device (on for CUDA, off for CPU) except
    for `compile`, whose "auto" is off everywhere (see its comment)."""

    epochs: int
    batch_size: int
    lr: float = 1e-4
    weight_decay: float = 0.01  # AdamW's default, which the official code keeps
    # The report's schedule: PolynomialLRDecay over 40 epochs down to 1e-4, power 1.
    scheduler: dict = field(
        default_factory=lambda: {"name": "poly", "max_decay_steps": 40, "end_learning_rate": 1e-4}
    )
    loss: dict = field(default_factory=lambda: {"name": "bce_dice"})
    num_workers: int = 0
    seed: int = 0
    device: str = AUTO
    amp: str = AUTO
    channels_last: bool | str = AUTO
    pin_memory: bool | str = AUTO
    # torch.compile of the training forward. "auto" is off on every device: on the CPU compiling
    # takes minutes and pays back only after thousands of steps (docs/benchmarks.md);
    # on CUDA it stays off until a GPU measurement shows it pays within a run.
    compile: bool | str = AUTO
    val_threshold: float = 0.5
    val_every: int = 1
    log_every: int = 10
    # Write last.pt, best.pt and history.csv after an epoch only when this many seconds have
    # passed since the last write, and always after the final epoch: a crash loses at most this
    # much training. 0 writes after every epoch. Saving a MiT-B5 run (weights and AdamW state)
    # writes about 1 GB, so every epoch would cost seconds of each short GPU epoch.
    checkpoint_every_seconds: float = 0.0
    # Under torchrun: "auto" is NCCL on CUDA, Gloo on the CPU (docs/scaling.md).
    distributed_backend: str = AUTO
    # Identifies the run's inputs (DVC passes a fingerprint of its stage inputs): a last.pt made
    # from other inputs is not resumed.
    resume_key: str | None = None
    # When last.pt was made with other settings: "refuse" (stop and say so) or "restart" (move
    # last.pt, best.pt and history.csv to superseded/<time>/ and train from scratch).
    on_changed_settings: str = "refuse"

    def __post_init__(self) -> None:
        for name, (is_valid, requirement) in _SETTING_CHECKS.items():
            value = getattr(self, name)
            if not is_valid(value):
                raise ValueError(f"training setting {name} must be {requirement}, got {value!r}.")

    @classmethod
    def from_dict(cls, settings: Mapping) -> "TrainingConfig":
        """Build from a parameters mapping, refusing keys that are not settings (typos)."""
        valid = [setting.name for setting in fields(cls)]
        unknown = sorted(set(settings) - set(valid))
        if unknown:
            raise ValueError(
                f"unknown training setting(s) {unknown}; valid settings: {', '.join(valid)}."
            )
        missing = sorted({"epochs", "batch_size"} - set(settings))
        if missing:
            raise ValueError(f"training settings lack required key(s) {missing}.")
        return cls(**settings)

    def to_dict(self) -> dict:
        """Plain-dict copy (stored in checkpoints and compared on resume)."""
        return asdict(self)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_bool_or_auto(value: object) -> bool:
    return isinstance(value, bool) or value == AUTO


def _names_one_of(registry: Mapping) -> Callable[[object], bool]:
    return lambda value: isinstance(value, Mapping) and value.get("name") in registry


_SETTING_CHECKS: dict[str, tuple[Callable[[object], bool], str]] = {
    "epochs": (lambda value: _is_int(value) and value > 0, "a positive integer"),
    "batch_size": (lambda value: _is_int(value) and value > 0, "a positive integer"),
    "lr": (lambda value: _is_number(value) and value > 0, "a number > 0"),
    "weight_decay": (lambda value: _is_number(value) and value >= 0, "a number >= 0"),
    "scheduler": (
        _names_one_of(SCHEDULERS),
        f"a mapping with 'name' one of {list(SCHEDULERS)} plus that schedule's options",
    ),
    "loss": (
        _names_one_of(LOSSES),
        f"a mapping with 'name' one of {list(LOSSES)} plus that loss's options",
    ),
    "num_workers": (lambda value: _is_int(value) and value >= 0, "an integer >= 0"),
    "seed": (lambda value: _is_int(value) and value >= 0, "an integer >= 0"),
    "device": (lambda value: isinstance(value, str), "'auto', 'cpu', 'cuda' or 'cuda:N'"),
    "amp": (lambda value: value in AMP_MODES, f"one of {list(AMP_MODES)}"),
    "channels_last": (_is_bool_or_auto, "true, false or 'auto'"),
    "pin_memory": (_is_bool_or_auto, "true, false or 'auto'"),
    "compile": (_is_bool_or_auto, "true, false or 'auto'"),
    "val_threshold": (lambda value: _is_number(value) and 0 < value < 1, "a number in (0, 1)"),
    "val_every": (lambda value: _is_int(value) and value > 0, "a positive integer"),
    "log_every": (lambda value: _is_int(value) and value > 0, "a positive integer"),
    "checkpoint_every_seconds": (lambda value: _is_number(value) and value >= 0, "a number >= 0"),
    "distributed_backend": (lambda value: value in BACKEND_CHOICES, f"one of {BACKEND_CHOICES}"),
    "resume_key": (lambda value: value is None or isinstance(value, str), "null or a string"),
    "on_changed_settings": (
        lambda value: value in CHANGED_SETTINGS_POLICIES,
        f"one of {CHANGED_SETTINGS_POLICIES}",
    ),
}


def resolve_auto(setting: bool | str, auto_value: bool) -> bool:
    """A true/false/"auto" setting as a bool, "auto" meaning `auto_value`."""
    return auto_value if setting == AUTO else bool(setting)
