"""Where do the heads differ? Overlap and boundary metrics, per polyp-size and polyp-count stratum.

SSFormer's argument is that the PLD's Local Emphasis recovers detail the transformer's global
features blur: boundaries and small polyps. Region overlap (Dice) barely moves when a boundary is
a few pixels off or a small polyp is missed among large ones, so each comparison of heads is
asked again with a boundary metric (normalised surface Dice, NSD; the 95th-percentile Hausdorff
distance, HD95, in % of the frame's diagonal) and within strata of the test images by their
ground truth: small, medium and large polyps (evaluation's `size_stratum`), and frames with
several polyps (`count_stratum`). Each row is the verdict's head-level comparison
(reporting/statistics.py), a dataset's backbones pooled as its Total; Holm's correction runs over
each metric's rows (one family per metric: "do the heads differ in Dice?", "... in NSD?", ...).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ssformer_repro.reporting import statistics as st
from ssformer_repro.reporting.names import format_p
from ssformer_repro.reporting.published import TEST_SET_DOMAINS
from ssformer_repro.reporting.tables import (
    BOUNDARY_NOTE,
    CONVENTION_NOTE,
    table_latex,
    table_markdown,
)
from ssformer_repro.reporting.verdict import cells

ALL = "all"


@dataclass(frozen=True)
class Metric:
    """A per-image metric of the comparison: its column, how a table names it, its unit, and
    whether higher is better."""

    column: str
    label: str
    unit: str
    higher_is_better: bool = True
    scale: float = 100.0  # per-image values times this, in `unit`


METRICS = (
    Metric("dice", "Dice", "points"),
    Metric("nsd", "NSD", "points"),
    Metric("hd95", "HD95", "% of the diagonal", higher_is_better=False),
)
# Which images each stratum holds: (column, value); ALL holds every image.
STRATA = {
    ALL: None,
    "small": ("size_stratum", "small"),
    "medium": ("size_stratum", "medium"),
    "large": ("size_stratum", "large"),
    "several polyps": ("count_stratum", "several"),
}


def domain_groups(test_sets: pd.Series) -> list[tuple[str, list[str]]]:
    """A dataset's one test set, or its domains' means (the PraNet benchmark's seen and unseen)
    and any set without a domain on its own: the strata split images further, so not every
    test set gets its own rows here."""
    names = sorted(set(test_sets))
    if len(names) == 1:
        return [(names[0], names)]
    groups = []
    for domain in dict.fromkeys(TEST_SET_DOMAINS.values()):
        members = [name for name in names if TEST_SET_DOMAINS.get(name) == domain]
        if members:
            groups.append((f"{domain} (mean)", members))
    return groups + [(name, [name]) for name in names if name not in TEST_SET_DOMAINS]


def where_table(
    image_scores: pd.DataFrame,
    margins: Mapping[str, float],
    alpha: float = 0.05,
    min_images: int = 5,
) -> pd.DataFrame:
    """One row per dataset x test-set group x comparison x metric x stratum (see module doc).

    `margins`: each metric's equivalence margin in its unit (dice, nsd, hd95). Images whose
    metric is undefined for any run (HD95 with exactly one empty mask) are left out of that
    metric's rows and counted in `n_undefined`; a stratum with fewer than `min_images` images
    is reported as such, without a test.
    """
    rows, tests = [], []
    for metric in METRICS:
        if metric.column not in image_scores:
            continue
        defined, undefined = _defined(image_scores, metric.column)
        for stratum, selection in STRATA.items():
            if selection is not None and selection[0] not in image_scores:
                continue
            column, value = selection or (None, None)
            chosen = defined if column is None else defined[defined[column] == value]
            left_out = undefined if column is None else undefined[undefined[column] == value]
            counts = left_out.groupby("dataset").size()
            for cell in _cells(chosen, metric):
                parts = st.components(cell.scores)
                enough = cell.scores.n_images >= min_images
                test = st.head_test(parts) if enough else None
                rows.append(
                    {
                        "dataset": cell.dataset,
                        "test_set": cell.test_set,
                        "comparison": f"{cell.first} vs {cell.second}",
                        "metric": metric.label,
                        "unit": metric.unit,
                        "stratum": stratum,
                        "n_images": cell.scores.n_images,
                        "n_undefined": int(counts.get(cell.dataset, 0)),
                        "n_seeds_A": min(cell.scores.trainings[0]),
                        "n_seeds_B": min(cell.scores.trainings[1]),
                        "mean_A": _mean(cell.scores.first, cell.scores.weights),
                        "mean_B": _mean(cell.scores.second, cell.scores.weights),
                        "difference": parts.difference,
                        "p": test.p if test else np.nan,
                        "margin": margins[metric.column],
                        "higher_is_better": metric.higher_is_better,
                        "enough_images": enough,
                    }
                )
                tests.append(test)
    if not rows:
        raise ValueError("No comparison of heads to tabulate by metric and stratum.")
    table = pd.DataFrame(rows)
    _decide(table, tests, alpha)
    order = {
        "metric": {metric.label: i for i, metric in enumerate(METRICS)},
        "stratum": {stratum: i for i, stratum in enumerate(STRATA)},
    }
    keys = ["dataset", "test_set", "comparison", "metric", "stratum"]
    table = table.sort_values(
        keys, key=lambda column: column.map(order[column.name]) if column.name in order else column
    )
    return table.reset_index(drop=True)


def _defined(image_scores: pd.DataFrame, column: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows of images whose `column` every run defines, and one row per image left out
    (undefined for some run), with its strata."""
    key = ["dataset", "test_set", "id"]
    undefined = image_scores[image_scores[column].isna()].drop_duplicates(key)
    dropped = image_scores.set_index(key).index.isin(undefined.set_index(key).index)
    return image_scores[~dropped], undefined


def _cells(chosen: pd.DataFrame, metric: Metric):
    """The pooled comparisons of `chosen`; an empty stratum yields none."""
    if chosen.empty:
        return
    yield from cells(chosen, (metric.column,), metric.scale, groups=domain_groups, pooled=True)


def _mean(arrays: tuple[np.ndarray, ...], weights: np.ndarray) -> float:
    """A head's mean over its trainings (and backbones) of the weighted image mean."""
    return float(np.mean([(array @ weights).mean() for array in arrays]))


def _decide(table: pd.DataFrame, tests: list, alpha: float) -> None:
    """Holm over each metric's rows with a test; each row's interval, outcome and verdict."""
    for column in ("level", "holm_p", "ci_low", "ci_high"):
        table[column] = np.nan
    table["family"] = 0
    table["outcome"], table["verdict"] = "", ""
    for _, rows in table.groupby("metric", sort=False):
        index = [i for i in rows.index if tests[i] is not None]
        p = [tests[i].p for i in index]
        levels, adjusted = st.holm_levels(p, alpha), st.holm(p)
        table.loc[rows.index, "family"] = len(index)
        for i, level, holm_p in zip(index, levels, adjusted, strict=True):
            low, high = tests[i].interval(level)
            table.loc[i, ["level", "holm_p", "ci_low", "ci_high"]] = [1 - level, holm_p, low, high]
    for i, row in table.iterrows():
        outcome, text = _verdict(row, tests[i])
        table.loc[i, ["outcome", "verdict"]] = [outcome, text]


def _verdict(row: pd.Series, test: st.Test | None) -> tuple[str, str]:
    """The outcome in the metric's direction (lower HD95 is better) and its words."""
    first, second = row["comparison"].split(" vs ")
    if not row["enough_images"]:
        return "too few images", f"too few images ({row['n_images']})"
    if test is None:
        return st.NEEDS_SEEDS, "needs 2+ seeds per head"
    outcome = st.outcome(row["ci_low"], row["ci_high"], row["margin"])
    if not row["higher_is_better"]:
        outcome = {st.A_BETTER: st.B_BETTER, st.B_BETTER: st.A_BETTER}.get(outcome, outcome)
    words = {
        st.A_BETTER: f"`{first}` better",
        st.B_BETTER: f"`{second}` better",
        st.EQUIVALENT: f"equivalent within ±{row['margin']:g}",
        st.INCONCLUSIVE: "inconclusive",
    }
    return outcome, words[outcome]


def where_display(table: pd.DataFrame) -> pd.DataFrame:
    """The table as a paper prints it."""

    def interval(row: pd.Series) -> str:
        if pd.isna(row["ci_low"]):
            return ""
        return f"[{row['ci_low']:+.2f}, {row['ci_high']:+.2f}] ({row['level']:.1%})"

    shown = pd.DataFrame(
        {
            "dataset": table["dataset"],
            "test set": table["test_set"],
            "comparison": table["comparison"],
            "metric": table["metric"],
            "stratum": table["stratum"],
            "A": table["mean_A"].map(lambda v: f"{v:.2f}"),
            "B": table["mean_B"].map(lambda v: f"{v:.2f}"),
            "difference": table["difference"].map(lambda v: f"{v:+.2f}"),
            "interval (level)": [interval(row) for _, row in table.iterrows()],
            "Holm p": table["holm_p"].map(format_p),
            "verdict": table["verdict"],
            "images (undefined)": [
                f"{n} ({u})" if u else f"{n}"
                for n, u in zip(table["n_images"], table["n_undefined"], strict=True)
            ],
        }
    )
    if (table["test_set"] == table["dataset"]).all():
        shown = shown.drop(columns="test set")
    return shown


METHOD = (
    "Each row is the verdict's head-level comparison (docs/statistics.md): the difference of "
    "the heads' mean metric over their trainings and the stratum's test images, a dataset's "
    "backbones pooled as its Total, each backbone's trainings its own; its interval at the "
    "row's Holm level, Holm-corrected over each metric's {families} rows with a test (one "
    "family per metric); a head is better when the interval excludes 0 (for HD95, lower is "
    "better), equivalent when it lies within the metric's margin ({margins}), else "
    "inconclusive. Images whose HD95 is undefined (exactly one of prediction and ground truth "
    "empty) are left out of the HD95 rows and counted; strata with fewer than {min_images} "
    "images are not tested."
)


def method_sentence(table: pd.DataFrame, min_images: int) -> str:
    """The method, with each metric's family size and margin."""
    families = ", ".join(
        f"{metric} {int(rows['family'].iloc[0])}"
        for metric, rows in table.groupby("metric", sort=False)
    )
    margins = ", ".join(
        f"{metric} ±{rows['margin'].iloc[0]:g} {rows['unit'].iloc[0]}"
        for metric, rows in table.groupby("metric", sort=False)
    )
    return METHOD.format(families=families, margins=margins, min_images=min_images)


def convention(nsd_tolerance: float) -> str:
    """The metrics' convention: Dice as the report's, NSD and HD95 as evaluation scores them."""
    return f"{CONVENTION_NOTE} {BOUNDARY_NOTE.format(tolerance=f'{nsd_tolerance:.2%}')}"


def where_markdown(table: pd.DataFrame, min_images: int, nsd_tolerance: float) -> str:
    """where_heads_differ.md: the table with its convention, method and how to read it."""
    title = "Where do the heads differ? By metric and polyp stratum"
    note = (
        "NSD: normalised surface Dice at the tolerance of docs/reference.md, in points of %; "
        "HD95: the 95th-percentile Hausdorff distance in % of the frame's diagonal (lower is "
        "better). Strata by the ground truth: polyp size by the training split's tertiles of "
        "foreground fraction, several polyps = two or more connected components. "
        'docs/statistics.md, "Where the heads differ", says how to read it.'
    )
    return table_markdown(
        where_display(table),
        title,
        note,
        method_sentence(table, min_images),
        convention(nsd_tolerance),
        numparse=False,
    )


def where_latex(table: pd.DataFrame, min_images: int, nsd_tolerance: float) -> str:
    """where_heads_differ.tex: the table for a paper."""
    title = "Head-level differences by metric and polyp stratum"
    method = method_sentence(table, min_images)
    return table_latex(where_display(table), title, method, convention(nsd_tolerance))
