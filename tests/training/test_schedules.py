import io

import pytest
import torch
from pydantic import ValidationError

from ssformer_repro.training.schedules import (
    SCHEDULE_OPTIONS,
    SCHEDULERS,
    PolynomialLRDecay,
    build_scheduler,
)
from ssformer_repro.training.settings import TrainingSettings


def _optimizer(lr: float) -> torch.optim.Optimizer:
    return torch.optim.AdamW([torch.nn.Parameter(torch.zeros(2))], lr=lr)


def _lrs(scheduler, optimizer, epochs: int) -> list[float]:
    """Learning rate used in each epoch when the schedule is stepped after every epoch."""
    lrs = []
    for _ in range(epochs):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


def test_poly_follows_the_report_formula_and_holds_the_end_rate():
    base, end, power, max_steps = 1e-2, 1e-4, 2.0, 10
    optimizer = _optimizer(base)
    scheduler = build_scheduler(
        optimizer,
        schedule(
            {"name": "poly", "max_decay_steps": max_steps, "end_learning_rate": end, "power": power}
        ),
    )

    lrs = _lrs(scheduler, optimizer, 15)

    expected = [
        (base - end) * (1 - min(e, max_steps) / max_steps) ** power + end for e in range(15)
    ]
    assert lrs == pytest.approx(expected, rel=1e-12)
    assert lrs[0] == pytest.approx(base)
    assert lrs[10:] == pytest.approx([end] * 5)


def test_poly_with_the_report_values_is_constant():
    optimizer = _optimizer(1e-4)
    scheduler = build_scheduler(optimizer, schedule({"name": "poly", "max_decay_steps": 40}))

    assert _lrs(scheduler, optimizer, 50) == pytest.approx([1e-4] * 50)


def test_poly_rejects_a_zero_decay_period():
    with pytest.raises(ValueError, match="max_decay_steps"):
        PolynomialLRDecay(_optimizer(1e-3), max_decay_steps=0)


def test_warmup_step_matches_the_official_schedule():
    base = 1e-4
    optimizer = _optimizer(base)
    scheduler = build_scheduler(optimizer, schedule({"name": "warmup_step"}))

    lrs = _lrs(scheduler, optimizer, 402)

    # GradualWarmupScheduler(multiplier=1, total_epoch=1) then StepLR(step_size=200, gamma=0.1),
    # stepped with the epoch index: 0 at epoch 0, base until epoch 200, then x0.1 every 200.
    assert lrs[0] == 0.0
    assert lrs[1:201] == pytest.approx([base] * 200)
    assert lrs[201:401] == pytest.approx([base * 0.1] * 200)
    assert lrs[401] == pytest.approx(base * 0.01)


def test_warmup_step_options():
    optimizer = _optimizer(1.0)
    scheduler = build_scheduler(
        optimizer,
        schedule({"name": "warmup_step", "warmup_epochs": 2, "step_size": 3, "gamma": 0.5}),
    )

    expected = [0.0, 0.5, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25]
    assert _lrs(scheduler, optimizer, 9) == pytest.approx(expected)


@pytest.mark.parametrize(
    "config",
    [
        {"name": "poly", "max_decay_steps": 6, "end_learning_rate": 1e-5, "power": 0.9},
        {"name": "warmup_step", "warmup_epochs": 1, "step_size": 2, "gamma": 0.3},
    ],
)
def test_scheduler_state_round_trips_for_resume(config):
    optimizer = _optimizer(1e-3)
    scheduler = build_scheduler(optimizer, schedule(config))
    _lrs(scheduler, optimizer, 3)
    buffer = io.BytesIO()
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, buffer)
    expected = _lrs(scheduler, optimizer, 6)

    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    resumed_optimizer = _optimizer(1e-3)
    resumed = build_scheduler(resumed_optimizer, schedule(config))
    resumed_optimizer.load_state_dict(saved["optimizer"])
    resumed.load_state_dict(saved["scheduler"])

    assert _lrs(resumed, resumed_optimizer, 6) == expected


def test_a_schedules_options_are_its_keyword_arguments_with_their_defaults():
    assert set(SCHEDULERS) == set(SCHEDULE_OPTIONS) == {"poly", "warmup_step"}
    assert SCHEDULE_OPTIONS["poly"]().model_dump() == {
        "name": "poly",
        "max_decay_steps": 40,
        "end_learning_rate": 1e-4,
        "power": 1.0,
    }
    assert SCHEDULE_OPTIONS["warmup_step"]().model_dump() == {
        "name": "warmup_step",
        "warmup_epochs": 1,
        "step_size": 200,
        "gamma": 0.1,
    }


def test_an_unknown_schedule_or_option_is_refused():
    with pytest.raises(ValidationError, match="'cosine'"):
        TrainingSettings.model_validate(
            {"epochs": 1, "batch_size": 2, "scheduler": {"name": "cosine"}}
        )
    with pytest.raises(ValidationError, match="milestones"):
        schedule({"name": "warmup_step", "milestones": [3]})
    with pytest.raises(ValidationError, match="greater than 0"):
        schedule({"name": "poly", "max_decay_steps": 0})


def schedule(config: dict):
    """The `training.scheduler` block of `config` ({"name": ..., **options})."""
    options = dict(config)
    return SCHEDULE_OPTIONS[options.pop("name")](**options)
