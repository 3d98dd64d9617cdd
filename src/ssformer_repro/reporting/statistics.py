"""Is one head better than another as an architecture, or is the difference noise?

The unit of replication of a claim about heads is the training: each training of a head on a
backbone shifts its score on every test image at once, so a hundred test images of one training
are not a hundred pieces of evidence about the head. Test images are a second, independent
source of variation. This module compares two heads' per-image test scores with both sources
(docs/statistics.md has the reasoning and sources):

    score(head h, backbone b, training s, image i) = mean_h + training_hbs + image_i + pair_hi
                                                     + residual_hbsi

- the difference is the mean score of head A minus that of head B (averaged over trainings, over
  the test images with their table's weights, and over backbones for a Total);
- its variance adds, for every head and backbone, the spread between that head's trainings
  divided by their number (Bouthillier et al. 2021, "Accounting for variance in machine learning
  benchmarks"), and the spread of the per-image differences that every training shares divided
  by the number of images, with the trainings' own per-image noise taken out so that it is not
  counted twice (a two-way analysis of variance of each head's trainings x images);
- a t statistic with Welch-Satterthwaite degrees of freedom, from which the p-value and the
  interval both come; `holm_levels` corrects a table's family of comparisons, and `outcome`
  reads the corrected interval: a winner, equivalent within a margin, or inconclusive.

With one training of a head the spread between trainings cannot be estimated: `compare` then
reports no head-level test, only the comparison of the two trained models over test images.
`plan` answers what it would take: how many trainings (or test images) would find a given
difference with a given power.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

A_BETTER, B_BETTER = "A better", "B better"
EQUIVALENT, INCONCLUSIVE = "equivalent", "inconclusive"
NEEDS_SEEDS = "needs 2+ seeds"


@dataclass(frozen=True)
class PairedScores:
    """Two heads' per-image scores on the same test images, in points of %.

    `first` and `second` hold one (trainings, images) array per backbone, their columns the same
    images in the same order; `weights` (summing to 1) is how the table averages the images (1/n,
    or per test set for a mean over test sets); `strata` labels the groups within which images
    are exchangeable draws (the test sets).
    """

    first: tuple[np.ndarray, ...]
    second: tuple[np.ndarray, ...]
    weights: np.ndarray
    strata: np.ndarray

    @classmethod
    def of(
        cls,
        first: Sequence[np.ndarray],
        second: Sequence[np.ndarray],
        weights: np.ndarray | None = None,
        strata: np.ndarray | None = None,
    ) -> PairedScores:
        """Check shapes; equal weights and one stratum unless given."""
        first = tuple(np.atleast_2d(np.asarray(a, dtype=np.float64)) for a in first)
        second = tuple(np.atleast_2d(np.asarray(b, dtype=np.float64)) for b in second)
        if not first or len(first) != len(second):
            raise ValueError("PairedScores needs the same backbones, one or more, for both heads.")
        n_images = first[0].shape[1]
        if n_images == 0 or any(x.shape[1] != n_images for x in first + second):
            raise ValueError("PairedScores needs every array scored on the same images.")
        weights = np.full(n_images, 1 / n_images) if weights is None else np.asarray(weights)
        strata = np.zeros(n_images, dtype=int) if strata is None else np.asarray(strata)
        return cls(first, second, weights / weights.sum(), strata)

    @property
    def n_images(self) -> int:
        return self.first[0].shape[1]

    @property
    def trainings(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """The number of trainings of each head, per backbone."""
        return tuple(a.shape[0] for a in self.first), tuple(b.shape[0] for b in self.second)


@dataclass(frozen=True)
class Components:
    """The measured variance components of a comparison (points squared), per head and backbone
    where they are the trainings', per stratum of images where they are the images'."""

    difference: float
    training: tuple[float, ...]  # spread between trainings of each (head, backbone), net of noise
    noise: tuple[float, ...]  # each (head, backbone)'s per-image noise, weighted as in the mean
    trainings: tuple[int, ...]  # how many trainings each (head, backbone) has
    backbones: int
    pair: tuple[float, ...]  # per stratum: the shared per-image difference, weighted
    images: tuple[int, ...]  # per stratum: its number of images
    models: float  # the variance of the difference over images alone (trained models fixed)


def components(scores: PairedScores) -> Components:
    """Split the variation of a comparison into its sources (see the module doc)."""
    w2 = scores.weights**2
    labels = np.unique(scores.strata)
    masks = [scores.strata == label for label in labels]
    backbones = len(scores.first)
    per_image = np.zeros(scores.n_images)
    training, noise, trainings, residual = [], [], [], np.zeros(len(labels))
    for arrays, sign in ((scores.first, 1.0), (scores.second, -1.0)):
        for array in arrays:
            n_trainings = array.shape[0]
            per_image += sign * array.mean(axis=0) / backbones
            means = array @ scores.weights
            mean_square = _residual_mean_squares(array, masks)  # per stratum
            weighted = float(
                sum(ms * w2[mask].sum() for ms, mask in zip(mean_square, masks, strict=True))
            )
            spread = float(means.var(ddof=1)) if n_trainings > 1 else float("nan")
            training.append(max(0.0, spread - weighted) if n_trainings > 1 else float("nan"))
            noise.append(weighted)
            trainings.append(n_trainings)
            residual += mean_square / n_trainings / backbones**2
    pair, models = [], 0.0
    for mask, expected_noise in zip(masks, residual, strict=True):
        spread = float(per_image[mask].var(ddof=1)) if mask.sum() > 1 else 0.0
        models += spread * w2[mask].sum()
        shared = spread - expected_noise if np.isfinite(expected_noise) else spread
        pair.append(max(0.0, shared) * w2[mask].sum())
    return Components(
        difference=float(per_image @ scores.weights),
        training=tuple(training),
        noise=tuple(noise),
        trainings=tuple(trainings),
        backbones=backbones,
        pair=tuple(pair),
        images=tuple(int(mask.sum()) for mask in masks),
        models=models,
    )


def _residual_mean_squares(array: np.ndarray, masks: list[np.ndarray]) -> np.ndarray:
    """Per stratum, the trainings x images residual mean square of a two-way analysis of
    variance (the noise of one training on one image); NaN with one training."""
    values = []
    for mask in masks:
        block = array[:, mask]
        rows, columns = block.shape
        if rows < 2 or columns < 2:
            values.append(np.nan if rows < 2 else 0.0)
            continue
        centred = block - block.mean(axis=1, keepdims=True) - block.mean(axis=0) + block.mean()
        values.append(float((centred**2).sum() / ((rows - 1) * (columns - 1))))
    return np.asarray(values)


@dataclass(frozen=True)
class Variance:
    """The variance of a difference and its Welch-Satterthwaite degrees of freedom."""

    value: float
    df: float

    @classmethod
    def of(cls, parts: Sequence[tuple[float, float]]) -> Variance:
        """Sum of (variance, df) parts, with Satterthwaite's degrees of freedom."""
        total = sum(v for v, _ in parts)
        denominator = sum(v**2 / df for v, df in parts if v > 0 and df > 0)
        return cls(total, total**2 / denominator if denominator > 0 else float("inf"))


def head_variance(
    parts: Components, trainings: int | None = None, image_factor: float = 1.0
) -> Variance:
    """The variance of the head-level difference: measured (the default), or planned with
    `trainings` per head and backbone and `image_factor` times the test images."""
    terms = []
    for spread, noise, measured in zip(parts.training, parts.noise, parts.trainings, strict=True):
        n = trainings or measured
        terms.append(((spread + noise / image_factor) / n / parts.backbones**2, n - 1))
    for pair, images in zip(parts.pair, parts.images, strict=True):
        terms.append((pair / image_factor, images * image_factor - 1))
    return Variance.of(terms)


@dataclass(frozen=True)
class Test:
    """A difference with its standard error, degrees of freedom and two-sided p-value."""

    difference: float
    se: float
    df: float
    p: float

    @classmethod
    def of(cls, difference: float, variance: Variance) -> Test:
        se = float(np.sqrt(variance.value))
        if se == 0:
            return cls(difference, 0.0, variance.df, 1.0 if difference == 0 else 0.0)
        p = 2 * stats.t.sf(abs(difference) / se, variance.df)
        return cls(difference, se, variance.df, float(p))

    def interval(self, alpha: float) -> tuple[float, float]:
        """The two-sided 1 - alpha interval."""
        if self.se == 0:
            return self.difference, self.difference
        half = stats.t.ppf(1 - alpha / 2, self.df) * self.se
        return self.difference - half, self.difference + half

    def equivalence_p(self, margin: float) -> float:
        """The larger p of the two one-sided tests of |difference| >= margin (Schuirmann)."""
        if self.se == 0:
            return 0.0 if abs(self.difference) < margin else 1.0
        lower = stats.t.sf((self.difference + margin) / self.se, self.df)
        upper = stats.t.cdf((self.difference - margin) / self.se, self.df)
        return float(max(lower, upper))


def head_test(parts: Components) -> Test | None:
    """The head-level test; None when a head has one training (its spread is unknown)."""
    if min(parts.trainings) < 2:
        return None
    return Test.of(parts.difference, head_variance(parts))


def models_test(parts: Components) -> Test:
    """The comparison of these trained models over test images alone: says nothing about the
    heads' other trainings."""
    df = sum(parts.images) - len(parts.images)
    return Test.of(parts.difference, Variance(parts.models, max(df, 1)))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error), in the order given."""
    p = np.asarray(p_values, dtype=np.float64)
    order = np.argsort(p, kind="stable")
    m = len(p)
    adjusted = np.empty(m)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[index]))
        adjusted[index] = running
    return adjusted.tolist()


def holm_levels(p_values: Sequence[float], alpha: float) -> list[float]:
    """Each comparison's corrected significance level under Holm's step-down procedure.

    Sorted by p, the k-th comparison is tested at alpha / (m - k + 1) while all before it were
    rejected; from the first one not rejected on, all are tested at that step's level. An
    interval at 1 - level therefore excludes zero exactly when Holm rejects.
    """
    order = np.argsort(np.asarray(p_values, dtype=np.float64), kind="stable")
    m, levels, stopped = len(order), [0.0] * len(order), None
    for rank, index in enumerate(order):
        level = alpha / (m - rank)
        if stopped is None and p_values[index] >= level:
            stopped = level
        levels[index] = stopped if stopped is not None else level
    return levels


def outcome(low: float, high: float, margin: float) -> str:
    """What an interval says: a head better (it excludes zero), equivalent (it lies within
    +-margin), or inconclusive."""
    if low > 0:
        return A_BETTER
    if high < 0:
        return B_BETTER
    if -margin < low and high < margin:
        return EQUIVALENT
    return INCONCLUSIVE


def probability_a_beats_b(
    scores: PairedScores, n_boot: int, rng: np.random.Generator, alpha: float
) -> tuple[float, float, float]:
    """P(A > B): the chance that a training of A scores above a training of B on these test
    images (on the same backbone, averaged over backbones), with a percentile bootstrap
    interval over trainings (Bouthillier et al. 2021); NaNs with one training of a head."""
    if min(min(n) for n in scores.trainings) < 2:
        return float("nan"), float("nan"), float("nan")
    pairs = [
        (a @ scores.weights, b @ scores.weights)
        for a, b in zip(scores.first, scores.second, strict=True)
    ]
    estimate = float(np.mean([_beats(a, b) for a, b in pairs]))
    draws = np.zeros(n_boot)
    for a, b in pairs:
        a_draws = a[rng.integers(0, len(a), (n_boot, len(a)))]
        b_draws = b[rng.integers(0, len(b), (n_boot, len(b)))]
        draws += _beats(a_draws, b_draws) / len(pairs)
    low, high = np.quantile(draws, [alpha / 2, 1 - alpha / 2])
    return estimate, float(low), float(high)


def _beats(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The share of (a, b) pairs in which a is higher, ties counting half, over the last axis."""
    greater = (a[..., :, None] > b[..., None, :]).mean(axis=(-2, -1))
    ties = (a[..., :, None] == b[..., None, :]).mean(axis=(-2, -1))
    return greater + ties / 2


@dataclass(frozen=True)
class Plan:
    """What it takes to find `difference` with `power` at `alpha` (two-sided)."""

    difference: float
    trainings: int | None  # per head and backbone; None: more than the plan's maximum
    power_now: float  # the power of the table as it is
    image_factor: float | None  # times today's test images, at today's trainings; None: never
    assumed_spread: bool  # the spread between trainings was assumed, not measured


def power(difference: float, variance: Variance, alpha: float) -> float:
    """The power of a two-sided t-test at `alpha` to find a true `difference`."""
    if variance.value <= 0:
        return 1.0 if difference != 0 else alpha
    df = min(variance.df, 1e6)
    critical = stats.t.ppf(1 - alpha / 2, df)
    shift = abs(difference) / np.sqrt(variance.value)
    return float(stats.nct.sf(critical, df, shift) + stats.nct.cdf(-critical, df, shift))


def plan(
    parts: Components,
    difference: float,
    alpha: float,
    target: float = 0.8,
    max_trainings: int = 50,
    max_image_factor: float = 100.0,
    assumed_spread: float | None = None,
) -> Plan:
    """How many trainings per head (and, for comparison, how many times the test images) a
    two-sided t-test at `alpha` needs to find `difference` with probability `target`.

    Where a head has one training its spread is unknown: `assumed_spread` (points) stands in for
    every head's, and the plan says so; without it the plan has no answer (None, NaN).
    """
    assumed = min(parts.trainings) < 2
    if assumed:
        if assumed_spread is None:
            return Plan(difference, None, float("nan"), None, True)
        parts = _with_assumed_spread(parts, assumed_spread)
    now = head_variance(parts)
    power_now = float("nan") if assumed else power(difference, now, alpha)
    trainings = next(
        (
            n
            for n in range(2, max_trainings + 1)
            if power(difference, head_variance(parts, n), alpha) >= target
        ),
        None,
    )
    image_factor = None
    if not assumed:
        factor = 1.0
        while factor <= max_image_factor:
            if power(difference, head_variance(parts, image_factor=factor), alpha) >= target:
                image_factor = factor
                break
            factor *= 1.25
    return Plan(difference, trainings, power_now, image_factor, assumed)


def _with_assumed_spread(parts: Components, spread: float) -> Components:
    """`parts` with every training spread `spread` (points). With one training per head the
    per-image differences cannot be split into what every training shares and each training's
    own noise; they are taken as noise, which more trainings average out (optimistic where the
    heads differ image by image in the same way in every training)."""
    n = len(parts.training)
    return Components(
        difference=parts.difference,
        training=(spread**2,) * n,
        noise=(parts.models * parts.backbones / 2,) * n,
        trainings=parts.trainings,
        backbones=parts.backbones,
        pair=(0.0,) * len(parts.images),
        images=parts.images,
        models=parts.models,
    )
