"""The `statistics` parameter block: the verdict's head-level test, its planner and the
boundary and size-strata analysis (docs/statistics.md)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, NonNegativeInt

from ssformer_repro.settings_types import Settings


class StatisticsSettings(Settings):
    """The verdict's head-level statistics and its planner (docs/statistics.md)."""

    alpha: Annotated[float, Field(gt=0, lt=1)] = 0.05  # family-wise, Holm over the table
    equivalence_margin: Annotated[float, Field(gt=0)] = 1.0  # points of mDice
    bootstrap_samples: Annotated[int, Field(ge=100)] = 2000  # of the P(A>B) interval
    seed: NonNegativeInt = 0  # of that bootstrap, so the table is the same on every run
    power: Annotated[float, Field(gt=0, lt=1)] = 0.8  # the planner's wanted power
    target_difference: Annotated[float, Field(gt=0)] = 1.0  # the planner's difference, points
    planning_training_spread: Annotated[float, Field(gt=0)] = 1.5  # points, one-seed cells
    max_seeds: Annotated[int, Field(ge=2)] = 50  # the planner looks no further
    # where_heads_differ: margins of the boundary metrics (NSD in points, HD95 in % of the
    # frame's diagonal; Dice uses equivalence_margin), and the smallest stratum tested
    boundary_margins: dict[Literal["nsd", "hd95"], Annotated[float, Field(gt=0)]] = {
        "nsd": 1.0,
        "hd95": 0.5,
    }
    min_stratum_images: Annotated[int, Field(ge=3)] = 5
