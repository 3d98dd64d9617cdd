"""Learning-rate schedules, stepped once per epoch: the report's polynomial decay and the official
warm-up + step decay.

A schedule's options are its keyword arguments after the optimizer; `SCHEDULE_OPTIONS` derives
the `training.scheduler` block of each from its signature.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Annotated

from pydantic import Field, NonNegativeFloat, NonNegativeInt, PositiveInt
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR, LRScheduler

from ssformer_repro.settings_types import Settings, options_model, options_of


class PolynomialLRDecay(LRScheduler):
    """The report's PolynomialLRDecay: lr = (base - end) * (1 - step / max_decay_steps)^power + end.

    `step` is the number of completed epochs, held at `max_decay_steps` afterwards (lr stays at
    `end_learning_rate`). The report's copy of the class (from pytorch-polynomial-lr-decay,
    default max_decay_steps=40) turns step 0 into step 1 when it is built, so its first epoch
    already runs at the step-1 rate; here epoch e runs at step e, starting from the base rate.
    With base = end (1e-4, the report's text) the rate is constant either way.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        max_decay_steps: PositiveInt = 40,
        end_learning_rate: NonNegativeFloat = 1e-4,
        power: float = 1.0,
        last_epoch: int = -1,
    ) -> None:
        if max_decay_steps < 1:
            raise ValueError(f"poly schedule: max_decay_steps must be >= 1, got {max_decay_steps}.")
        self.max_decay_steps = max_decay_steps
        self.end_learning_rate = end_learning_rate
        self.power = power
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        """Learning rate of each parameter group at step `last_epoch`."""
        remaining = 1 - min(self.last_epoch, self.max_decay_steps) / self.max_decay_steps
        decay = remaining**self.power
        return [
            (base_lr - self.end_learning_rate) * decay + self.end_learning_rate
            for base_lr in self.base_lrs
        ]


def warmup_then_step_factor(epoch: int, warmup_epochs: int, step_size: int, gamma: float) -> float:
    """Multiplier of the base lr: linear from 0 over `warmup_epochs`, then x gamma every `step_size`."""
    warmup = min(1.0, epoch / warmup_epochs) if warmup_epochs > 0 else 1.0
    decay = gamma ** (max(0, epoch - warmup_epochs) // step_size)
    return warmup * decay


def warmup_step_schedule(
    optimizer: Optimizer,
    warmup_epochs: NonNegativeInt = 1,
    step_size: PositiveInt = 200,
    gamma: Annotated[float, Field(gt=0)] = 0.1,
) -> LambdaLR:
    """The official schedule: GradualWarmupScheduler(multiplier=1, total_epoch=1) then StepLR(200, 0.1).

    As in the official script, epoch 0 runs at lr 0 (the warm-up starts from 0), epoch 1 at the
    base lr, and StepLR counts from the end of the warm-up (first decay after epoch 200 + 1).
    torch's LinearLR cannot start from 0, hence a LambdaLR.
    """
    if warmup_epochs < 0 or step_size < 1:
        raise ValueError(
            f"warmup_step schedule: need warmup_epochs >= 0 and step_size >= 1, "
            f"got {warmup_epochs} and {step_size}."
        )
    factor = partial(
        warmup_then_step_factor, warmup_epochs=warmup_epochs, step_size=step_size, gamma=gamma
    )
    return LambdaLR(optimizer, lr_lambda=factor)


SCHEDULERS: dict[str, Callable[..., LRScheduler]] = {
    "poly": PolynomialLRDecay,
    "warmup_step": warmup_step_schedule,
}
# The `training.scheduler` block of each schedule: `name` and its keyword arguments.
SCHEDULE_OPTIONS: dict[str, type[Settings]] = {
    name: options_model(
        schedule,
        f"{name.title().replace('_', '')}Schedule",
        ("optimizer", "last_epoch"),
        ("name", name),
    )
    for name, schedule in SCHEDULERS.items()
}


def build_scheduler(optimizer: Optimizer, options: Settings) -> LRScheduler:
    """The per-epoch schedule a `training.scheduler` block (one of `SCHEDULE_OPTIONS`) chooses."""
    return SCHEDULERS[options.name](optimizer, **options_of(options, "name"))
