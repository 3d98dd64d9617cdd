"""Does a head beat another, or is the difference seed and image noise? Paired statistics on
the per-image test scores of every run (docs/statistics.md).

For one dataset x backbone and two heads A and B, every test image has a Dice score under each
head and each training seed (a k-fold dataset's folds together cover every image once). The
paired difference of an image is its Dice under A minus under B, averaged over the seeds, in
points of %. The table reports:

- each head's mDice and mIoU, mean and standard deviation over seeds;
- the mean paired difference, with a 95 % percentile-bootstrap interval that resamples images
  and, with several seeds, seeds too (two-level: seeds with replacement, then images with
  replacement, the statistic the mean difference over both);
- the two-sided Wilcoxon signed-rank p-value of the per-image differences (scipy.stats), Holm's
  correction over every comparison of the table, and a verdict at `alpha`.

A dataset's Total row pools its backbones: an image's difference is averaged over backbones
too, and the bootstrap resamples images (and seeds) across all of them at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

# How a paper names the heads (and which code name each is, said once under the tables).
HEAD_NAMES = {"pld": "PLD (official)", "pld_linear": "PLD (report)", "sed": "SeD"}
HEAD_NOTE = (
    "PLD (official) is `pld`, the official SSFormer head; PLD (report) is `pld_linear`, the "
    "head the reproduction report trained (no 3x3 Local Emphasis); SeD is `sed`, SegFormer's "
    "all-MLP decoder."
)
# Each PLD variant against SeD, as the study compares them, and the two PLDs against each other.
VERDICT_COMPARISONS = (("pld", "sed"), ("pld_linear", "sed"), ("pld", "pld_linear"))
TOTAL = "Total"
NO_DIFFERENCE = "no significant difference"


@dataclass(frozen=True)
class PairedTest:
    """The paired comparison of two heads on the same images and seeds."""

    difference: float  # mean paired difference of Dice, points of %
    low: float  # bootstrap interval
    high: float
    p_value: float  # Wilcoxon signed-rank, two-sided, on the per-image differences
    n_images: int
    n_seeds: int


def paired_test(
    differences: np.ndarray, n_boot: int, rng: np.random.Generator, level: float = 0.95
) -> PairedTest:
    """Test an array of paired differences shaped (seeds, images) (see the module doc)."""
    differences = np.asarray(differences, dtype=np.float64)
    if differences.ndim != 2 or differences.size == 0:
        raise ValueError(f"paired_test needs (seeds, images) differences, got {differences.shape}.")
    n_seeds, n_images = differences.shape
    low, high = bootstrap_interval(differences, n_boot, rng, level)
    return PairedTest(
        difference=float(differences.mean()),
        low=low,
        high=high,
        p_value=wilcoxon_p(differences.mean(axis=0)),
        n_images=n_images,
        n_seeds=n_seeds,
    )


def bootstrap_interval(
    differences: np.ndarray, n_boot: int, rng: np.random.Generator, level: float = 0.95
) -> tuple[float, float]:
    """Percentile interval of the mean of (seeds, images) differences, resampling seeds (when
    there are several) and images with replacement, in chunks to bound memory."""
    n_seeds, n_images = differences.shape
    means = np.empty(n_boot)
    chunk = max(1, 2_000_000 // max(1, n_images * n_seeds))
    for start in range(0, n_boot, chunk):
        size = min(chunk, n_boot - start)
        seeds = (
            rng.integers(0, n_seeds, (size, n_seeds)) if n_seeds > 1 else np.zeros((size, 1), int)
        )
        images = rng.integers(0, n_images, (size, n_images))
        picked = differences[seeds[:, :, None], images[:, None, :]]  # (size, seeds, images)
        means[start : start + size] = picked.mean(axis=(1, 2))
    tail = (1 - level) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return float(low), float(high)


def wilcoxon_p(per_image: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value of per-image differences; 1 when all are zero
    (zero differences are dropped, as Wilcoxon's original test does)."""
    per_image = np.asarray(per_image, dtype=np.float64)
    if not np.any(per_image != 0):
        return 1.0
    return float(stats.wilcoxon(per_image, zero_method="wilcox", alternative="two-sided").pvalue)


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


def verdict(difference: float, adjusted_p: float, first: str, second: str, alpha: float) -> str:
    """ "`<head>` better" for the significantly higher head, else no significant difference."""
    if adjusted_p >= alpha or difference == 0:
        return NO_DIFFERENCE
    return f"`{first if difference > 0 else second}` better"


def paired_differences(scores: pd.DataFrame, first: str, second: str) -> np.ndarray:
    """Dice of `first` minus `second` (points of %) on the same images, shaped (seeds, images).

    `scores` holds one dataset x backbone (or several backbones, for a Total): columns
    backbone, head, seed, id, dice. Images are the (backbone, id) pairs; every head must have
    every seed and image of the other, or a ValueError names what is missing.
    """
    wide = scores.pivot_table(
        index=["seed"], columns=["head", "backbone", "id"], values="dice", aggfunc="first"
    )
    for head in (first, second):
        if head not in wide.columns.get_level_values("head"):
            raise ValueError(f"no test scores of head {head!r}; its runs are missing.")
    a, b = wide[first], wide[second]
    missing = sorted(set(a.columns) ^ set(b.columns))
    if missing or a.isna().to_numpy().any() or b.isna().to_numpy().any():
        lacking = [
            f"{head} seed {seed}"
            for head, table in ((first, a), (second, b))
            for seed, row in table.iterrows()
            if row.isna().any()
        ]
        raise ValueError(
            f"{first} and {second} were not scored on the same seeds and images "
            f"({', '.join(lacking) or f'{len(missing)} images differ'}): a run is missing or "
            "failed; train it (or narrow reproduce.seeds) before the verdict."
        )
    return 100 * (a.to_numpy() - b.loc[:, a.columns].to_numpy())


def seed_means(scores: pd.DataFrame, metric: str) -> pd.Series:
    """Per seed, the mean of `metric` over the test images (all folds together), in %."""
    return 100 * scores.groupby("seed")[metric].mean()


def verdict_table(
    image_scores: pd.DataFrame,
    report_winners: dict[tuple[str, str], str],
    n_boot: int = 2000,
    seed: int = 0,
    alpha: float = 0.05,
    level: float = 0.95,
    tta: str = "none",
) -> pd.DataFrame:
    """Every dataset x backbone (and each dataset's Total) x comparison of heads (see module doc).

    `tta` is the test-time augmentation the scores were computed with (`evaluation.tta`); the
    table keeps it in a column and its method sentence says it.

    `image_scores`: columns dataset, backbone, head, seed, id, dice, iou (one row per run and
    test image). `report_winners` maps (dataset, backbone or "Total") to the head the report
    found better ("pld" for its PLD, "sed"), for the cells it has.
    """
    rng = np.random.default_rng(seed)
    heads = set(image_scores["head"])
    rows = []
    for dataset, of_dataset in image_scores.groupby("dataset", sort=True):
        backbones = list(dict.fromkeys(of_dataset["backbone"]))
        for backbone in [*backbones, TOTAL]:
            cell = (
                of_dataset if backbone == TOTAL else of_dataset[of_dataset["backbone"] == backbone]
            )
            for first, second in VERDICT_COMPARISONS:
                if not {first, second} <= heads:
                    continue
                test = paired_test(paired_differences(cell, first, second), n_boot, rng, level)
                rows.append(
                    {
                        "dataset": dataset,
                        "backbone": backbone,
                        "comparison": f"{first} vs {second}",
                        **_head_columns(cell, first, "A"),
                        **_head_columns(cell, second, "B"),
                        "difference": test.difference,
                        "ci_low": test.low,
                        "ci_high": test.high,
                        "wilcoxon_p": test.p_value,
                        "n_images": test.n_images,
                        "n_seeds": test.n_seeds,
                        "report_winner": _report_winner(
                            report_winners, dataset, backbone, first, second
                        ),
                    }
                )
    if not rows:
        raise ValueError(
            "No comparison of heads to tabulate: the grid needs at least two of "
            f"{sorted(HEAD_NAMES)} (it has {sorted(heads)})."
        )
    table = pd.DataFrame(rows)
    table["holm_p"] = holm(table["wilcoxon_p"].tolist())
    firsts, seconds = zip(*(c.split(" vs ") for c in table["comparison"]), strict=True)
    table["verdict"] = [
        verdict(d, p, a, b, alpha)
        for d, p, a, b in zip(table["difference"], table["holm_p"], firsts, seconds, strict=True)
    ]
    table["our_data"] = [
        _agreement(row.report_winner, row.verdict) for row in table.itertuples(index=False)
    ]
    table["tta"] = tta
    return table


def _head_columns(cell: pd.DataFrame, head: str, side: str) -> dict:
    """A head's mDice / mIoU mean and std over seeds, and the per-seed values."""
    of_head = cell[cell["head"] == head]
    columns = {f"head_{side}": head}
    for metric, label in (("dice", "mdice"), ("iou", "miou")):
        # A Total's per-seed value is the mean over its backbones' images.
        means = seed_means(of_head, metric)
        columns[f"{label}_{side}"] = float(means.mean())
        columns[f"{label}_{side}_std"] = (
            float(means.std(ddof=1)) if len(means) > 1 else float("nan")
        )
        columns[f"{label}_{side}_per_seed"] = ", ".join(f"{value:.2f}" for value in means)
    return columns


def _report_winner(winners: dict, dataset: str, backbone: str, first: str, second: str) -> str:
    """The head the report found better in this cell, in this comparison's terms; "" for none.

    The report compared its PLD (our `pld_linear`) with SeD; its winner is also shown for the
    official PLD, whose claim it tested."""
    winner = winners.get((dataset, backbone))
    if winner is None or second != "sed":
        return ""
    return first if winner == "pld" else "sed"


def _agreement(report_winner: str, our_verdict: str) -> str:
    if not report_winner:
        return ""
    if our_verdict == NO_DIFFERENCE:
        return "cannot tell"
    return "confirms" if our_verdict == f"`{report_winner}` better" else "contradicts"


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


METHOD = (
    "Paired on the same test images, scored {tta}: the difference is each image's Dice under "
    "the first head "
    "minus under the second, averaged over seeds, in points; its {level:.0%} interval is a "
    "percentile bootstrap ({n_boot} resamples of images, and of seeds when there are several), "
    "p a two-sided Wilcoxon signed-rank test of the per-image differences, Holm-corrected over "
    "the {rows} comparisons of the table, significant below {alpha}."
)


def method_sentence(table: pd.DataFrame, statistics: dict) -> str:
    """The verdict table's statistical method, in one sentence."""
    tta = str(table["tta"].iloc[0]) if "tta" in table else "none"
    scored = (
        "without test-time augmentation"
        if tta == "none"
        else f"with test-time augmentation ({tta})"
    )
    return METHOD.format(
        tta=scored,
        level=statistics["level"],
        n_boot=statistics["bootstrap_samples"],
        rows=len(table),
        alpha=statistics["alpha"],
    )


def verdict_display(table: pd.DataFrame) -> pd.DataFrame:
    """The verdict as a paper shows it: mean ± std, the difference with its interval, p-values."""

    def mean_std(mean: float, std: float) -> str:
        return f"{mean:.2f}" if pd.isna(std) else f"{mean:.2f} ± {std:.2f}"

    shown = pd.DataFrame(
        {
            "dataset": table["dataset"],
            "backbone": table["backbone"],
            "comparison": table["comparison"],
            "mDice A": [
                mean_std(m, s) for m, s in zip(table["mdice_A"], table["mdice_A_std"], strict=True)
            ],
            "mDice B": [
                mean_std(m, s) for m, s in zip(table["mdice_B"], table["mdice_B_std"], strict=True)
            ],
            "difference [95 % CI]": [
                f"{d:+.2f} [{lo:+.2f}, {hi:+.2f}]"
                for d, lo, hi in zip(
                    table["difference"], table["ci_low"], table["ci_high"], strict=True
                )
            ],
            "Wilcoxon p": table["wilcoxon_p"].map(lambda p: f"{p:.3g}"),
            "Holm p": table["holm_p"].map(lambda p: f"{p:.3g}"),
            "verdict": table["verdict"],
            "report's winner": table["report_winner"],
            "our data": table["our_data"],
            "images x seeds": [
                f"{i} x {s}" for i, s in zip(table["n_images"], table["n_seeds"], strict=True)
            ],
        }
    )
    return shown


def verdict_markdown(table: pd.DataFrame, statistics: dict) -> str:
    """verdict.md: the verdict table with its convention, method and head names."""
    from ssformer_repro.reporting.tables import table_markdown

    note = (
        "A is the first head of the comparison, B the second. The report's winner is its "
        "section 4.1 result for that cell (its PLD is PLD (report); for PLD (official) it is "
        "the claim being tested); our data confirm it, contradict it, or cannot tell "
        "(no significant difference). docs/statistics.md explains how to read this table."
    )
    title = "Verdict: paired differences of mDice between heads"
    return table_markdown(verdict_display(table), title, note, method_sentence(table, statistics))


def verdict_latex(table: pd.DataFrame, statistics: dict) -> str:
    """verdict.tex: the verdict table for a paper."""
    from ssformer_repro.reporting.tables import table_latex

    title = "Paired differences of mDice between heads"
    return table_latex(verdict_display(table), title, method_sentence(table, statistics))
