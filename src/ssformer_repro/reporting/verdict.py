"""The verdict table: does a head beat another, cell by cell, beyond training and image noise?

Every dataset x test set x backbone (and each dataset's Total over two or more backbones) x
comparison of heads is one row, computed by reporting/statistics.py from the per-image test
scores of every training. A dataset's test sets are compared one by one and, where they belong
to domains (the PraNet benchmark's seen and unseen sets), per domain as the mean of its sets.
Holm's correction runs over the rows with a head-level test, each a distinct comparison; each
row's interval is at its Holm step's level, so a row names a winner exactly when its interval
excludes zero.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ssformer_repro.reporting import statistics as st
from ssformer_repro.reporting.names import COMPARISONS, HEAD_NAMES, format_p
from ssformer_repro.reporting.published import TEST_SET_DOMAINS
from ssformer_repro.reporting.tables import table_latex, table_markdown

TOTAL = "Total"


@dataclass(frozen=True)
class Cell:
    """One comparison of two heads: where it is, and the paired scores it rests on."""

    dataset: str
    test_set: str  # a test set, or "<domain> (mean)" for a domain's sets
    backbone: str  # a backbone, or Total
    backbones: tuple[str, ...]  # the backbones it pools (one, or a Total's)
    first: str
    second: str
    scores: st.PairedScores  # the compared metric's
    others: dict[str, st.PairedScores]  # the same images' other metrics (the heads' mIoU)


@dataclass(frozen=True)
class _Scored:
    """One head's scores on one backbone: its images (test set, id), sorted, and per metric a
    (seeds, images) array, NaN where a seed lacks an image."""

    test_sets: np.ndarray
    ids: np.ndarray
    seeds: list
    values: dict[str, np.ndarray]

    @classmethod
    def of(cls, table: pd.DataFrame, metrics: tuple[str, ...], scale: float) -> _Scored:
        wide = table.pivot(index="seed", columns=["test_set", "id"], values=list(metrics))
        columns = wide[metrics[0]].columns
        return cls(
            np.asarray(columns.get_level_values("test_set"), dtype=object),
            np.asarray(columns.get_level_values("id"), dtype=object),
            list(wide.index),
            {metric: scale * wide[metric].to_numpy(dtype=np.float64) for metric in metrics},
        )


def cells(
    image_scores: pd.DataFrame,
    metrics: tuple[str, ...] = ("dice", "iou"),
    scale: float = 100.0,
    groups: Callable[[pd.Series], list[tuple[str, list[str]]]] | None = None,
    pooled: bool = False,
) -> Iterator[Cell]:
    """Every comparison of the table, in order (see the module doc), on `metrics[0]` (times
    `scale`: Dice in points of %); the others ride along in `Cell.others`.

    `image_scores`: one row per run and test image with columns dataset, backbone, head, seed,
    id, test_set and the metrics (a k-fold seed's folds together cover its images once).
    `groups` says which test sets make a row (default: each alone, then each domain's); with
    `pooled` a dataset's backbones make one row (its Total), not one each.
    """
    groups = groups or test_set_groups
    for dataset, of_dataset in image_scores.groupby("dataset", sort=True):
        backbones = list(dict.fromkeys(of_dataset["backbone"]))
        heads = set(of_dataset["head"])
        scored = {
            key: _Scored.of(table, metrics, scale)
            for key, table in of_dataset.groupby(["backbone", "head"], sort=False)
        }
        rows = [TOTAL if len(backbones) > 1 else backbones[0]] if pooled else backbones
        if not pooled and len(backbones) > 1:
            rows = [*rows, TOTAL]
        for label, test_sets in groups(of_dataset["test_set"]):
            for backbone in rows:
                chosen = backbones if backbone == TOTAL else [backbone]
                for first, second in COMPARISONS:
                    if not {first, second} <= heads:
                        continue
                    paired = {
                        metric: _paired(scored, metric, chosen, first, second, test_sets)
                        for metric in metrics
                    }
                    main = paired.pop(metrics[0])
                    yield Cell(dataset, label, backbone, tuple(chosen), first, second, main, paired)


def test_set_groups(test_sets: pd.Series) -> list[tuple[str, list[str]]]:
    """Each test set alone, then each domain's sets together where there are several sets."""
    names = sorted(set(test_sets))
    groups = [(name, [name]) for name in names]
    if len(names) > 1:
        for domain in dict.fromkeys(TEST_SET_DOMAINS.values()):
            members = [n for n in names if TEST_SET_DOMAINS.get(n) == domain]
            if len(members) > 1:
                groups.append((f"{domain} (mean)", members))
    return groups


def _paired(
    scored: dict[tuple[str, str], _Scored],
    metric: str,
    backbones: list[str],
    first: str,
    second: str,
    test_sets: list[str],
) -> st.PairedScores:
    """The two heads' (seeds, images) arrays per backbone on `test_sets`, images aligned; each
    test set weighs the same in the mean (a domain's mean is the mean of its sets' means)."""
    arrays: dict[str, list[np.ndarray]] = {first: [], second: []}
    reference = None
    for backbone in backbones:
        for head in (first, second):
            if (backbone, head) not in scored:
                raise ValueError(
                    f"no test scores of head {head!r} on {backbone}; its runs are missing."
                )
            of_head = scored[(backbone, head)]
            chosen = np.isin(of_head.test_sets, test_sets)
            values = of_head.values[metric][:, chosen]
            if reference is None:
                reference = of_head.test_sets[chosen], of_head.ids[chosen]
            same = np.array_equal(of_head.ids[chosen], reference[1])
            if not same or np.isnan(values).any():
                lacking = [
                    f"seed {seed}"
                    for seed, row in zip(of_head.seeds, values, strict=True)
                    if np.isnan(row).any()
                ]
                raise ValueError(
                    f"{first} and {second} on {', '.join(backbones)} were not scored on the same "
                    f"test images ({head} on {backbone}: "
                    f"{', '.join(lacking) or 'other images'}): a run is missing or failed; train "
                    "it (or narrow reproduce.seeds) before the verdict."
                )
            arrays[head].append(values)
    strata = reference[0]
    names, counts = np.unique(strata, return_counts=True)
    size = dict(zip(names, counts, strict=True))
    weights = np.array([1 / (len(names) * size[name]) for name in strata])
    return st.PairedScores.of(arrays[first], arrays[second], weights, strata)


def image_scores_frame(test_scores: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Per-image test scores of every run (keyed by run name) in one table, with the run's
    dimensions as columns: dataset, backbone, head, seed, fold, then the per-image columns."""
    from ssformer_repro.grid.runs import GridRun

    frames = []
    for name, scores in test_scores.items():
        run = GridRun.parse(name)
        frames.append(scores.assign(**{k: v for k, v in run.fields().items()}))
    if not frames:
        raise ValueError(
            "No test scores to compare: the grid in parameters_reproduce.yml is empty."
        )
    frame = pd.concat(frames, ignore_index=True)
    dimensions = list(GridRun(dataset="", backbone="", head="", seed=0).fields())
    return frame[dimensions + [c for c in frame.columns if c not in dimensions]]


def verdict_table(
    image_scores: pd.DataFrame,
    report_differences: dict[tuple[str, str], float],
    alpha: float = 0.05,
    margin: float = 1.0,
    n_boot: int = 2000,
    seed: int = 0,
    tta: str = "none",
) -> pd.DataFrame:
    """The verdict: one row per comparison (see the module doc), its columns in docs/statistics.md.

    `report_differences` maps (dataset, backbone) to the report's PLD minus SeD mDice in points
    (reporting/published.py); `tta` is the test-time augmentation the scores were computed with.
    """
    rng = np.random.default_rng(seed)
    rows, tests = [], []
    for cell in cells(image_scores):
        parts = st.components(cell.scores)
        test = st.head_test(parts)
        models = st.models_test(parts)
        models_low, models_high = models.interval(alpha)
        beats, beats_low, beats_high = st.probability_a_beats_b(cell.scores, n_boot, rng, alpha)
        rows.append(
            {
                "dataset": cell.dataset,
                "test_set": cell.test_set,
                "backbone": cell.backbone,
                "comparison": f"{cell.first} vs {cell.second}",
                **_head_columns(cell, "A"),
                **_head_columns(cell, "B"),
                "n_images": cell.scores.n_images,
                "difference": parts.difference,
                "training_sd": _pooled_sd(parts.training, parts.noise, parts.trainings),
                "image_sd": float(np.sqrt(sum(parts.pair) * cell.scores.n_images)),
                "se": test.se if test else np.nan,
                "df": test.df if test else np.nan,
                "p": test.p if test else np.nan,
                "p_a_beats_b": beats,
                "p_a_beats_b_low": beats_low,
                "p_a_beats_b_high": beats_high,
                "models_low": models_low,
                "models_high": models_high,
                "models_p": models.p,
                "report_difference": report_difference(report_differences, cell),
            }
        )
        tests.append(test)
    if not rows:
        raise ValueError(
            "No comparison of heads to tabulate: the grid needs at least two of "
            f"{sorted(HEAD_NAMES)} (it has {sorted(set(image_scores['head']))})."
        )
    table = pd.DataFrame(rows)
    _decide(table, tests, alpha, margin)
    table["tta"] = tta
    return table


def _decide(table: pd.DataFrame, tests: list[st.Test | None], alpha: float, margin: float) -> None:
    """Holm over the rows with a head-level test; each row's interval, outcome and verdict."""
    family = [test.p for test in tests if test is not None]
    levels = iter(st.holm_levels(family, alpha))
    adjusted = iter(st.holm(family))
    table["family"] = len(family)
    lows, highs, levels_of, holm_p, outcomes, verdicts, tost = ([] for _ in range(7))
    for test, comparison in zip(tests, table["comparison"], strict=True):
        first, second = comparison.split(" vs ")
        if test is None:
            for column in (lows, highs, levels_of, holm_p, tost):
                column.append(np.nan)
            outcomes.append(st.NEEDS_SEEDS)
            verdicts.append("needs 2+ seeds per head")
            continue
        level = next(levels)
        low, high = test.interval(level)
        lows.append(low), highs.append(high), levels_of.append(1 - level)
        holm_p.append(next(adjusted)), tost.append(test.equivalence_p(margin))
        said = st.outcome(low, high, margin)
        outcomes.append(said)
        verdicts.append(
            {
                st.A_BETTER: f"`{first}` better",
                st.B_BETTER: f"`{second}` better",
                st.EQUIVALENT: f"equivalent within ±{margin:g}",
                st.INCONCLUSIVE: "inconclusive",
            }[said]
        )
    table["level"], table["holm_p"] = levels_of, holm_p
    table["ci_low"], table["ci_high"] = lows, highs
    table["equivalence_p"] = tost
    table["margin"] = margin
    table["outcome"], table["verdict"] = outcomes, verdicts
    table["report_winner"] = [_report_winner(row) for row in table.itertuples(index=False)]
    table["our_data"] = [_agreement(row) for row in table.itertuples(index=False)]


def _head_columns(cell: Cell, side: str) -> dict:
    """A head's mDice and mIoU: the mean over its trainings (and a Total's backbones); on one
    backbone also their standard deviation and per-seed values."""
    index = 0 if side == "A" else 1
    columns: dict = {f"head_{side}": (cell.first, cell.second)[index]}
    for label, scores in (("mdice", cell.scores), ("miou", cell.others["iou"])):
        per_training = [array @ scores.weights for array in (scores.first, scores.second)[index]]
        columns[f"{label}_{side}"] = float(np.mean([values.mean() for values in per_training]))
        one = per_training[0] if len(per_training) == 1 else np.array([])
        columns[f"{label}_{side}_std"] = float(one.std(ddof=1)) if len(one) > 1 else np.nan
        columns[f"{label}_{side}_per_seed"] = ", ".join(f"{value:.2f}" for value in one)
    columns[f"n_seeds_{side}"] = min(cell.scores.trainings[index])
    return columns


def _pooled_sd(training: tuple, noise: tuple, trainings: tuple) -> float:
    """The spread between trainings of a head's mean score, pooled over heads and backbones
    (the square root of the mean variance of a training's score), NaN with one training."""
    variances = [t + n for t, n, k in zip(training, noise, trainings, strict=True) if k > 1]
    return float(np.sqrt(np.mean(variances))) if len(variances) == len(training) else np.nan


def report_difference(differences: dict[tuple[str, str], float], cell: Cell) -> float:
    """The report's difference in this comparison's terms: its PLD (`pld_linear`; for the
    official PLD, the claim it tested) minus SeD on the dataset's one test split; a Total's is
    the mean over its backbones. NaN where the report has no such cell."""
    if cell.second != "sed" or cell.test_set != cell.dataset:
        return np.nan
    keys = [(cell.dataset, backbone) for backbone in cell.backbones]
    if not all(key in differences for key in keys):
        return np.nan
    return float(np.mean([differences[key] for key in keys]))


def _report_winner(row) -> str:  # noqa: ANN001
    """The head the report found better in this comparison's terms, "" without a report cell."""
    if pd.isna(row.report_difference):
        return ""
    first, second = row.comparison.split(" vs ")
    return first if row.report_difference > 0 else second


def _agreement(row) -> str:  # noqa: ANN001
    """Do our data confirm the report's winner, contradict it, or not tell?"""
    if not row.report_winner:
        return ""
    first, second = row.comparison.split(" vs ")
    winner = {st.A_BETTER: first, st.B_BETTER: second}.get(row.outcome)
    if winner is not None:
        return "confirms" if winner == row.report_winner else "contradicts"
    return {
        st.EQUIVALENT: "equivalent: the heads differ by less than the margin",
        st.INCONCLUSIVE: "cannot tell",
        st.NEEDS_SEEDS: "cannot tell (one training per head)",
    }[row.outcome]


METHOD = (
    "Head-level comparison, the training being the unit of replication. The difference is head "
    "A's mean Dice minus head B's, in points, over their trainings (seeds) and the test "
    "images{sets}, scored {tta}; a Total averages its backbones, each with its own trainings. "
    "Its variance adds, per head and backbone, the spread between trainings over their number, "
    "and the spread of the per-image differences that every training shares over the number of "
    "images (the trainings' own per-image noise counted once), with Welch-Satterthwaite degrees "
    "of freedom (Bouthillier et al. 2021). p from the t distribution, Holm-corrected over the "
    "{family} distinct comparisons with two or more seeds per head; each interval is at its Holm "
    "step's level, so a head is better exactly when its interval excludes 0, equivalent when "
    "the interval lies within ±{margin:g} points (two one-sided tests), else inconclusive. "
    "P(A>B): the share of pairs of trainings (one per head, same backbone) in which A scores "
    "higher, with a {level:.0%} percentile bootstrap interval over trainings ({n_boot} "
    'resamples). "These trained models": the same difference with the variance over images '
    "alone ({level:.0%} paired t interval): it compares the trainings at hand, not the heads."
)


def method_sentence(table: pd.DataFrame, alpha: float, n_boot: int) -> str:
    """The verdict table's statistical method, in a paragraph."""
    tta = str(table["tta"].iloc[0])
    several = (table["test_set"] != table["dataset"]).any()
    return METHOD.format(
        sets=" (each test set weighing the same in a domain's mean)" if several else "",
        tta="without test-time augmentation" if tta == "none" else f"with TTA ({tta})",
        family=int(table["family"].iloc[0]),
        margin=float(table["margin"].iloc[0]),
        level=1 - alpha,
        n_boot=n_boot,
    )


def verdict_display(table: pd.DataFrame) -> pd.DataFrame:
    """The verdict as a paper shows it: means ± spread over seeds, the difference with the
    interval the verdict reads, Holm's p, P(A>B) and the trained models' interval."""

    def mean_std(mean: float, std: float) -> str:
        return f"{mean:.2f}" if pd.isna(std) else f"{mean:.2f} ± {std:.2f}"

    def interval(low: float, high: float, suffix: str = "") -> str:
        return "" if pd.isna(low) else f"[{low:+.2f}, {high:+.2f}]{suffix}"

    rows = table.itertuples(index=False)
    shown = pd.DataFrame(
        [
            {
                "dataset": row.dataset,
                "test set": row.test_set,
                "backbone": row.backbone,
                "comparison": row.comparison,
                "mDice A": mean_std(row.mdice_A, row.mdice_A_std),
                "mDice B": mean_std(row.mdice_B, row.mdice_B_std),
                "difference": f"{row.difference:+.2f}",
                "interval (level)": interval(
                    row.ci_low, row.ci_high, "" if pd.isna(row.level) else f" ({row.level:.1%})"
                ),
                "Holm p": format_p(row.holm_p),
                "verdict": row.verdict,
                "P(A>B)": ""
                if pd.isna(row.p_a_beats_b)
                else f"{row.p_a_beats_b:.2f} {interval(row.p_a_beats_b_low, row.p_a_beats_b_high)}".replace(
                    "+", ""
                ),
                "these trained models": interval(row.models_low, row.models_high),
                "report's difference": ""
                if pd.isna(row.report_difference)
                else f"{row.report_difference:+.2f}",
                "our data": "" if pd.isna(row.our_data) else row.our_data,
                "seeds A, B x images": f"{row.n_seeds_A}, {row.n_seeds_B} x {row.n_images}",
            }
            for row in rows
        ]
    )
    if (table["test_set"] == table["dataset"]).all():
        shown = shown.drop(columns="test set")
    if not table["report_difference"].notna().any():
        shown = shown.drop(columns=["report's difference", "our data"])
    return shown


READING = (
    'A is the first head of the comparison, B the second. "needs 2+ seeds per head": with one '
    "training of a head the spread between trainings is unknown, so the table cannot speak "
    'about the heads; "these trained models" still compares the two trained models. The '
    "report's difference is its one-training result for that cell (its PLD is PLD (report); "
    "for PLD (official) it is the claim being tested); our data confirm its winner, contradict "
    "it, find the heads equivalent, or cannot tell. docs/statistics.md explains how to read "
    "this table."
)


def verdict_markdown(table: pd.DataFrame, alpha: float, n_boot: int, plans: str = "") -> str:
    """verdict.md: the table with its convention, method, head names and, below, what more
    seeds would settle (`plans`, from reporting/power.py)."""
    method = method_sentence(table, alpha, n_boot)
    title = "Verdict: does a head beat another, beyond training and image noise?"
    text = table_markdown(verdict_display(table), title, READING, method, numparse=False)
    return f"{text}\n{plans}" if plans else text


def verdict_latex(table: pd.DataFrame, alpha: float, n_boot: int) -> str:
    """verdict.tex: the table for a paper, its method in the caption."""
    shown = verdict_display(table).drop(columns=["these trained models"], errors="ignore")
    title = "Head-level differences of mDice between heads"
    return table_latex(shown, title, method_sentence(table, alpha, n_boot))
