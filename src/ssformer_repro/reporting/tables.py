"""The study's tables from every run's test metrics: results, winners, totals, comparisons.

A table cell (dataset x backbone x head, per test set) averages its runs: a seed's k-fold runs
are pooled over their images, then seeds are averaged. CSV files keep the code names of the
heads; the Markdown and LaTeX tables name them as a paper does, and state the metric
convention and the statistical method.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from ssformer_repro.reporting.names import HEAD_NAMES, HEAD_NOTE
from ssformer_repro.reporting.published import TEST_SET_DOMAINS, published_table

METRICS = {"miou": "mIoU", "mdice": "mDice"}
# The boundary metrics (evaluation/boundary.py), beside the region overlap. hd95_undefined counts
# a run's test images where one mask is empty, which mHD95 leaves out.
BOUNDARY_METRICS = {
    "mnsd": "mNSD",
    "mhd95": "mHD95 (% of diagonal)",
    "hd95_undefined": "HD95 undefined (images)",
}
TABLE_METRICS = METRICS | BOUNDARY_METRICS
PERCENT = ("miou", "mdice", "mnsd", "mhd95")  # fractions in test_metrics.json, % in the tables
LOWER_IS_BETTER = ("mhd95",)
COUNTS = ("hd95_undefined",)  # no winner; a seed's folds add up
WITHOUT_TTA = "_without_tta"  # suffix of the scores without test-time augmentation
# Each PLD variant is compared with SegFormer's SeD, as the study does.
COMPARISONS = {"pld": "sed", "pld_linear": "sed"}
CONVENTION_NOTE = (
    "Foreground Dice and IoU per test image at threshold 0.5, prediction resized to the mask's "
    "original size, averaged over images (the report's mDice/mIoU), in %."
)
BOUNDARY_NOTE = (
    "mNSD: normalised surface Dice per image, the share of both boundaries within {tolerance} of "
    "the frame's diagonal of the other boundary, averaged over images; mHD95: the 95th-percentile "
    "Hausdorff distance per image relative to the frame's diagonal, averaged over the images where "
    "it is defined; HD95 undefined: the test images (per training run) where exactly one of "
    "prediction and mask is empty, left out of mHD95 (both empty: NSD 1, HD95 0; Metrics "
    "Reloaded's conventions, MONAI's surface distances)."
)
CELL = ["dataset", "backbone", "head"]


def method_note(n_seeds: int) -> str:
    """The one sentence on a results table's statistical method."""
    if n_seeds == 1:
        return (
            "One training run per cell and no statistical test: a winner here may be training "
            "noise; verdict.md says what more seeds would settle."
        )
    return (
        f"Each cell is the mean over {n_seeds} training seeds, without a test: verdict.md tests "
        "the differences between heads (trainings and test images as sources of variation, "
        "Holm-corrected)."
    )


def boundary_note(frame: pd.DataFrame) -> str:
    """The boundary metrics' convention, with the NSD tolerance(s) of the runs in `frame`."""
    tolerances = sorted(set(frame["nsd_tolerance"]))
    return BOUNDARY_NOTE.format(tolerance=" or ".join(f"{value:.2%}" for value in tolerances))


def table_convention(frame: pd.DataFrame) -> str:
    """The results and test-set tables' metric convention: region overlap and boundary metrics."""
    return f"{CONVENTION_NOTE} {boundary_note(frame)} mNSD and mHD95 in % too."


def metric_labels(frame: pd.DataFrame) -> dict[str, str]:
    """The metric columns of `frame` with their labels: mIoU, mDice, mNSD, mHD95 and the count
    of undefined HD95, and where the runs were scored with test-time augmentation, each without
    and with it, side by side."""
    if f"mdice{WITHOUT_TTA}" not in frame:
        return dict(TABLE_METRICS)
    tta = ", ".join(sorted(set(frame["tta"].dropna()) - {"none"}))
    labels = {}
    for metric, label in TABLE_METRICS.items():
        labels[f"{metric}{WITHOUT_TTA}"] = f"{label} (no TTA)"
        labels[metric] = f"{label} (TTA: {tta})"
    return labels


def _scores(
    scores: dict[str, Any], without_tta: dict[str, Any] | None, run: str
) -> dict[str, float]:
    """The table metrics (in % where they are fractions), and the same without TTA where the
    run was scored both ways."""
    missing = [metric for metric in TABLE_METRICS if metric not in scores]
    if missing:
        raise ValueError(
            f"The test metrics of run {run!r} lack {missing}: they predate the boundary metrics; "
            "re-run its evaluation (kedro run --pipelines=training re-scores it, no training)."
        )
    values = {metric: _in_table_units(metric, scores[metric]) for metric in TABLE_METRICS}
    if without_tta is not None:
        values |= {
            f"{metric}{WITHOUT_TTA}": _in_table_units(metric, without_tta[metric])
            for metric in TABLE_METRICS
        }
    return values


def _in_table_units(metric: str, value: float | None) -> float:
    value = float("nan") if value is None else float(value)
    return 100 * value if metric in PERCENT else value


def runs_frame(run_metrics: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """One row per run: its name, dataset, backbone, head, seed, fold, n_images, tta, mdice and miou in %
    (and `<metric>_without_tta` for runs scored with test-time augmentation)."""
    rows = [
        {
            "run": m.get("name", ""),
            "dataset": m["dataset"],
            "backbone": m["backbone"],
            "head": m["head"],
            "seed": m.get("seed"),
            "fold": m.get("fold"),
            "n_images": m.get("n_images", 1),
            "tta": m.get("tta", "none"),
            "nsd_tolerance": m.get("nsd_tolerance"),
            **_scores(m, m.get("without_tta"), m.get("name", m["dataset"])),
        }
        for m in run_metrics
    ]
    if not rows:
        raise ValueError(
            "No run metrics to tabulate: the grid in parameters_reproduce.yml is empty."
        )
    return pd.DataFrame(rows)


def scores_per_test_set(run_metrics: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """One row per run and test set: dataset, domain, test_set, backbone, head, mdice, miou (%).

    A dataset with one test split has one test set, named after it; `domain` is "seen" or
    "unseen" for the PraNet benchmark's sets (reporting/published.py), empty otherwise.
    """
    rows = [
        {
            "dataset": m["dataset"],
            "domain": TEST_SET_DOMAINS.get(test_set, ""),
            "test_set": test_set,
            "backbone": m["backbone"],
            "head": m["head"],
            "seed": m.get("seed"),
            "n_images": scores.get("n_images", 1),
            "tta": m.get("tta", "none"),
            "nsd_tolerance": m.get("nsd_tolerance"),
            **_scores(scores, _set_without_tta(m, test_set), m.get("name", m["dataset"])),
        }
        for m in run_metrics
        for test_set, scores in (m.get("test_sets") or {m["dataset"]: m}).items()
    ]
    if not rows:
        raise ValueError(
            "No run metrics to tabulate: the grid in parameters_reproduce.yml is empty."
        )
    return pd.DataFrame(rows)


def _set_without_tta(metrics: dict[str, Any], test_set: str) -> dict[str, Any] | None:
    """A run's scores of one test set without TTA (None when it was scored without TTA)."""
    without = metrics.get("without_tta")
    if without is None:
        return None
    return (without.get("test_sets") or {}).get(test_set, without)


def cell_means(frame: pd.DataFrame, keys: list[str] | None = None) -> pd.DataFrame:
    """Mean of each metric per cell (`keys`): a seed's runs pooled over their images (its
    folds; mHD95 over the images where it is defined, counts added up), then the mean over
    seeds; `n_seeds` says how many."""
    keys = keys or CELL
    metrics = list(metric_labels(frame))
    frame = frame.assign(seed=frame["seed"].fillna(-1))
    weights = {metric: _pooling_weight(frame, metric) for metric in metrics}
    weighted = frame.assign(
        **{m: (frame[m] * w).where(w > 0, 0.0) for m, w in weights.items()},
        **{f"{m} weight": w for m, w in weights.items()},
    )
    summed = [*metrics, *(f"{m} weight" for m in metrics)]
    per_seed = weighted.groupby([*keys, "seed"], sort=False)[summed].sum()
    for metric in metrics:
        if _base(metric) not in COUNTS:
            per_seed[metric] = per_seed[metric] / per_seed[f"{metric} weight"].replace(0, np.nan)
    cells = per_seed.groupby(level=keys, sort=False)[metrics].mean()
    cells["n_seeds"] = per_seed.groupby(level=keys, sort=False).size()
    return cells.reset_index()


def _base(metric: str) -> str:
    """A metric column's name without its `_without_tta` suffix."""
    return metric.removesuffix(WITHOUT_TTA)


def _pooling_weight(frame: pd.DataFrame, metric: str) -> pd.Series:
    """What a run's `metric` weighs when a seed's folds are pooled: its images, for mHD95 those
    where HD95 is defined; a count weighs 1 (it is added up)."""
    if _base(metric) in COUNTS:
        return pd.Series(1.0, index=frame.index)
    if _base(metric) == "mhd95":
        suffix = metric.removeprefix("mhd95")
        return frame["n_images"] - frame[f"hd95_undefined{suffix}"]
    return frame["n_images"].astype(float)


def per_test_set_table(test_sets: pd.DataFrame) -> pd.DataFrame:
    """Per dataset, test set, backbone and metric, each head and the winners; where a dataset's
    test sets have domains, the mean of each domain's sets ("seen", "unseen") per backbone."""
    index = ["dataset", "domain", "test_set", "backbone", "metric"]
    labels = metric_labels(test_sets)
    test_sets = test_sets.assign(domain=test_sets["domain"].fillna(""))
    test_sets = cell_means(test_sets, ["dataset", "domain", "test_set", "backbone", "head"])
    long = test_sets.melt(id_vars=index[:-1] + ["head"], value_vars=list(labels), var_name="metric")
    wide = long.pivot_table(index=index, columns="head", values="value", sort=True)
    domains = wide[wide.index.get_level_values("domain") != ""]
    means = domains.groupby(level=["dataset", "domain", "backbone", "metric"]).mean()
    means.index = pd.MultiIndex.from_tuples(
        [(d, domain, f"{domain} (mean)", b, m) for d, domain, b, m in means.index], names=index
    )
    table = _with_winners(
        pd.concat([wide, means]).sort_index().reindex(list(labels), level="metric")
    )
    return table.rename(index=labels, level="metric").reset_index().rename_axis(columns=None)


def results_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Section 4.1 of the report: per dataset, backbone and metric, each head, winners, and a
    Total per dataset that has two or more backbones (with one it would repeat that row)."""
    labels = metric_labels(runs)
    long = cell_means(runs).melt(
        id_vars=["dataset", "backbone", "head"], value_vars=list(labels), var_name="metric"
    )
    wide = long.pivot_table(
        index=["dataset", "backbone", "metric"], columns="head", values="value", sort=True
    )
    wide = wide.reindex(list(labels), level="metric")  # mIoU then mDice, as in the report
    backbones = wide.index.to_frame(index=False).groupby("dataset")["backbone"].nunique()
    pooled = wide[wide.index.get_level_values("dataset").isin(backbones[backbones > 1].index)]
    totals = pooled.groupby(level=["dataset", "metric"], sort=False).mean()
    totals.index = pd.MultiIndex.from_tuples(
        [(dataset, "Total", metric) for dataset, metric in totals.index],
        names=wide.index.names,
    )
    table = _with_winners(
        pd.concat([wide, totals]).sort_index(level="dataset", sort_remaining=False)
    )
    return table.rename(index=labels, level="metric").reset_index().rename_axis(columns=None)


def _with_winners(table: pd.DataFrame) -> pd.DataFrame:
    """A "winner <pld> vs <baseline>" column for each comparison whose heads are in `table`
    (rows indexed by metric column names: higher wins, lower for mHD95, none for counts)."""
    metrics = table.index.get_level_values("metric")
    for pld, baseline in COMPARISONS.items():
        if pld in table and baseline in table:
            table[f"winner {pld} vs {baseline}"] = [
                _winner(row[pld], row[baseline], pld, baseline, _base(metric))
                for metric, (_, row) in zip(metrics, table.iterrows(), strict=True)
            ]
    return table


def _winner(score: float, baseline_score: float, name: str, baseline: str, metric: str) -> str:
    if metric in COUNTS or pd.isna(score) or pd.isna(baseline_score):
        return ""
    if score == baseline_score:
        return "tie"
    better = score < baseline_score if metric in LOWER_IS_BETTER else score > baseline_score
    return name if better else baseline


def comparison_table(test_sets: pd.DataFrame) -> pd.DataFrame:
    """Our numbers next to the report's, the paper's and the official README's, per test set,
    with the differences (points of %). `model` names the published model (SSFormer-S/-L)."""
    published = published_table()
    sources = list(dict.fromkeys(published["source"]))
    keys = ["dataset", "test_set", "backbone", "head"]
    values = published.pivot_table(index=keys, columns="source", values=list(METRICS))
    models = published[published["model"] != ""].set_index(keys)["model"].to_dict()
    rows = []
    cells = cell_means(test_sets, ["dataset", "test_set", "backbone", "head"])
    for run in cells.itertuples(index=False):
        key = (run.dataset, run.test_set, run.backbone, run.head)
        for metric, label in METRICS.items():
            ours = getattr(run, metric)
            row = {
                "dataset": run.dataset,
                "test_set": run.test_set,
                "backbone": run.backbone,
                "head": run.head,
                "model": models.get(key, ""),
                "metric": label,
                "ours": ours,
            }
            for source in sources:
                column = (metric, source)
                value = (
                    values.at[key, column]
                    if key in values.index and column in values and pd.notna(values.at[key, column])
                    else float("nan")
                )
                row[source] = value
                row[f"ours - {source}"] = ours - value
            rows.append(row)
    return pd.DataFrame(rows)


def paper_names(table: pd.DataFrame) -> pd.DataFrame:
    """`table` with the heads named as a paper names them (in columns and in winner cells)."""

    def rename(text: str) -> str:
        for code in sorted(HEAD_NAMES, key=len, reverse=True):
            text = re.sub(rf"(?<![\w`]){code}(?![\w`])", HEAD_NAMES[code], text)
        return text

    renamed = table.rename(columns={column: rename(str(column)) for column in table.columns})
    for column in renamed.columns:
        if str(column).startswith("winner") or column in ("head", "comparison", "report's winner"):
            renamed[column] = renamed[column].map(lambda value: rename(str(value)))
    return renamed


def table_markdown(
    table: pd.DataFrame,
    title: str,
    note: str = "",
    method: str = "",
    convention: str = CONVENTION_NOTE,
    numparse: bool = True,
) -> str:
    """A Markdown table with its title, its metric convention, its statistical method, which
    head is which, and an optional note. `numparse=False` prints text cells as they are (a
    formatted "+0.40" or "0.001" stays so)."""
    body = paper_names(table).to_markdown(
        index=False, floatfmt=".2f", disable_numparse=not numparse
    )
    lines = [convention, method, HEAD_NOTE, note]
    text = "\n\n".join(line for line in lines if line)
    return f"# {title}\n\n{text}\n\n{body}\n"


def table_latex(
    table: pd.DataFrame, title: str, method: str = "", convention: str = CONVENTION_NOTE
) -> str:
    """A LaTeX table (booktabs) with the metric convention and method in its caption."""
    caption = " ".join(part for part in (f"{title}.", convention, method, HEAD_NOTE) if part)
    return paper_names(table).to_latex(
        index=False, float_format="%.2f", na_rep="--", caption=caption, escape=True
    )
