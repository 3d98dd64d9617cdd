"""Per-image scores with a known truth, to prove the verdict's method before it reaches a table.

`simulate` draws the per-image test scores of two heads from the model the verdict assumes
(reporting/statistics.py): every training shifts a head's score on every image at once, images
differ in difficulty for all heads, a few images favour one head in every training, and each
training has its own per-image noise. `calibrate` runs the verdict's comparison on many such
tables and counts how often it names a winner, covers the truth, finds equivalence.

    python -m ssformer_repro.reporting.simulation      # the calibration table of docs/statistics.md
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from ssformer_repro.reporting import statistics as st


@dataclass(frozen=True)
class Truth:
    """How two heads' scores arise, in points of Dice (%)."""

    difference: float = 0.0  # the true difference of the heads' mean scores, A - B
    training_sd: float = 1.5  # spread of a head's mean score between its trainings
    noise_sd: float = 3.0  # one training's own per-image noise
    pair_sd: float = 1.0  # per-image difference between the heads shared by every training
    difficulty_sd: float = 8.0  # per-image difficulty shared by both heads (pairing removes it)
    mean: float = 85.0


def simulate(
    truth: Truth,
    seeds: int,
    images: int,
    rng: np.random.Generator,
    backbones: int = 1,
    seeds_b: int | None = None,
) -> st.PairedScores:
    """One table's scores of heads A and B: (trainings, images) arrays per backbone."""
    difficulty = rng.normal(0, truth.difficulty_sd, images)
    first, second = [], []
    for _ in range(backbones):
        pair = rng.normal(0, truth.pair_sd, images)
        for arrays, shift, n in (
            (first, truth.difference + pair, seeds),
            (second, 0.0, seeds_b or seeds),
        ):
            trainings = rng.normal(0, truth.training_sd, (n, 1))
            noise = rng.normal(0, truth.noise_sd, (n, images))
            arrays.append(truth.mean + difficulty + shift + trainings + noise)
    return st.PairedScores.of(first, second)


def scores_frame(scores: st.PairedScores, dataset: str = "sim") -> pd.DataFrame:
    """The simulated scores as the reporting pipeline's image_scores table (Dice in [0, 1])."""
    rows = []
    for backbone, (a, b) in enumerate(zip(scores.first, scores.second, strict=True)):
        for head, array in (("pld", a), ("sed", b)):
            seeds, images = np.indices(array.shape)
            rows.append(
                pd.DataFrame(
                    {
                        "dataset": dataset,
                        "backbone": f"b{backbone}",
                        "head": head,
                        "seed": seeds.ravel(),
                        "fold": None,
                        "id": [f"i{i:04d}" for i in images.ravel()],
                        "test_set": dataset,
                        "dice": array.ravel() / 100,
                        "iou": array.ravel() / 100,
                    }
                )
            )
    return pd.concat(rows, ignore_index=True)


@dataclass(frozen=True)
class Rates:
    """How often, over simulated tables, the verdict did what."""

    tables: int
    winner: float  # named a winner (either head)
    right_winner: float  # named the head that is truly better (0 where they are equal)
    covered: float  # the interval covered the true difference (tables with a head-level test)
    equivalent: float  # said equivalent within the margin
    images_only: float  # a test over images alone (the trained models) rejected: what a
    # per-image test, treating one training's shift of every image as evidence, would claim


def expected_components(truth: Truth, seeds: int, images: int, backbones: int = 1) -> st.Components:
    """The variance components `statistics.components` estimates, as `truth` makes them."""
    n = 2 * backbones
    shared = truth.pair_sd**2 / backbones / images
    noise = truth.noise_sd**2 / images
    return st.Components(
        difference=truth.difference,
        training=(truth.training_sd**2,) * n,
        noise=(noise,) * n,
        trainings=(seeds,) * n,
        backbones=backbones,
        pair=(shared,),
        images=(images,),
        models=shared + 2 * noise / seeds / backbones,
    )


def calibrate(
    truth: Truth,
    seeds: int,
    images: int,
    tables: int,
    rng: np.random.Generator,
    backbones: int = 1,
    alpha: float = 0.05,
    margin: float = 1.0,
) -> Rates:
    """Run the head-level comparison (one comparison at level alpha, as `statistics` does for
    each row) on `tables` simulated tables. A table without a head-level test (one seed) names
    no winner and no equivalence; coverage counts the tables with a test."""
    better = st.A_BETTER if truth.difference > 0 else st.B_BETTER
    winners = right = covered = equivalent = tested = images_only = 0
    for _ in range(tables):
        parts = st.components(simulate(truth, seeds, images, rng, backbones))
        images_only += st.models_test(parts).p < alpha
        test = st.head_test(parts)
        if test is None:
            continue
        tested += 1
        low, high = test.interval(alpha)
        said = st.outcome(low, high, margin)
        winners += said in (st.A_BETTER, st.B_BETTER)
        right += truth.difference != 0 and said == better
        covered += low <= truth.difference <= high
        equivalent += said == st.EQUIVALENT
    coverage = covered / tested if tested else float("nan")
    return Rates(
        tables,
        winners / tables,
        right / tables,
        coverage,
        equivalent / tables,
        images_only / tables,
    )


CASES: Sequence[tuple[str, Truth, int, int, int]] = (
    # (what, truth, seeds, images, backbones)
    ("equal heads, 1 seed", Truth(), 1, 100, 1),
    ("equal heads, 2 seeds", Truth(), 2, 100, 1),
    ("equal heads, 3 seeds", Truth(), 3, 100, 1),
    ("equal heads, 5 seeds", Truth(), 5, 100, 1),
    ("equal heads, 3 seeds, Total of 3 backbones", Truth(), 3, 100, 3),
    ("equal heads, wide spread (3), 3 seeds", Truth(training_sd=3.0, noise_sd=6.0), 3, 60, 1),
    ("3-point difference, spread 0.5, 3 seeds", Truth(3.0, training_sd=0.5), 3, 100, 1),
    ("equal heads, spread 0.3, 5 seeds, 200 images", Truth(training_sd=0.3), 5, 200, 1),
)


def calibration_table(tables: int = 1000, seed: int = 0) -> pd.DataFrame:
    """The calibration of docs/statistics.md: each case's rates over `tables` tables."""
    rng = np.random.default_rng(seed)
    rows = []
    for what, truth, seeds, images, backbones in CASES:
        rates = calibrate(truth, seeds, images, tables, rng, backbones)
        rows.append(
            {"case": what, **asdict(truth), "seeds": seeds, "images": images} | asdict(rates)
        )
    return pd.DataFrame(rows)


def main(argv: Sequence[str] | None = None) -> None:
    """Print the calibration table (Markdown)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, default=1000, help="simulated tables per case")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    table = calibration_table(args.tables, args.seed)
    columns = ["case", "winner", "right_winner", "covered", "equivalent", "images_only"]
    sys.stdout.write(table[columns].to_markdown(index=False, floatfmt=".3f") + "\n")


if __name__ == "__main__":
    main()
