"""The study's tables from every run's test metrics: results, winners, totals, comparisons."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from ssformer_repro.reporting.published import TEST_SET_DOMAINS, published_table

METRICS = {"miou": "mIoU", "mdice": "mDice"}
# Each PLD variant is compared with SegFormer's SeD, as the study does.
COMPARISONS = {"pld": "sed", "pld_linear": "sed"}
CONVENTION_NOTE = (
    "Foreground Dice and IoU per test image at threshold 0.5, prediction resized to the mask's "
    "original size, averaged over images (the report's mDice/mIoU), in %."
)


def runs_frame(run_metrics: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """One row per run: dataset, backbone, head, mdice and miou in %."""
    rows = [
        {
            "dataset": m["dataset"],
            "backbone": m["backbone"],
            "head": m["head"],
            "mdice": 100 * m["mdice"],
            "miou": 100 * m["miou"],
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
            "mdice": 100 * scores["mdice"],
            "miou": 100 * scores["miou"],
        }
        for m in run_metrics
        for test_set, scores in (m.get("test_sets") or {m["dataset"]: m}).items()
    ]
    if not rows:
        raise ValueError(
            "No run metrics to tabulate: the grid in parameters_reproduce.yml is empty."
        )
    return pd.DataFrame(rows)


def per_test_set_table(test_sets: pd.DataFrame) -> pd.DataFrame:
    """Per dataset, test set, backbone and metric, each head and the winners; where a dataset's
    test sets have domains, the mean of each domain's sets ("seen", "unseen") per backbone."""
    index = ["dataset", "domain", "test_set", "backbone", "metric"]
    test_sets = test_sets.assign(domain=test_sets["domain"].fillna(""))
    long = test_sets.melt(
        id_vars=index[:-1] + ["head"], value_vars=list(METRICS), var_name="metric"
    )
    wide = long.pivot_table(index=index, columns="head", values="value", sort=True)
    domains = wide[wide.index.get_level_values("domain") != ""]
    means = domains.groupby(level=["dataset", "domain", "backbone", "metric"]).mean()
    means.index = pd.MultiIndex.from_tuples(
        [(d, domain, f"{domain} (mean)", b, m) for d, domain, b, m in means.index], names=index
    )
    table = pd.concat([wide, means]).sort_index()
    table = table.reindex(list(METRICS), level="metric").rename(index=METRICS, level="metric")
    return _with_winners(table).reset_index().rename_axis(columns=None)


def results_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Section 4.1 of the report: per dataset, backbone and metric, each head, winners, totals."""
    long = runs.melt(
        id_vars=["dataset", "backbone", "head"], value_vars=list(METRICS), var_name="metric"
    )
    wide = long.pivot_table(
        index=["dataset", "backbone", "metric"], columns="head", values="value", sort=True
    )
    wide = wide.reindex(list(METRICS), level="metric")  # mIoU then mDice, as in the report
    totals = wide.groupby(level=["dataset", "metric"], sort=False).mean()
    totals.index = pd.MultiIndex.from_tuples(
        [(dataset, "Total", metric) for dataset, metric in totals.index],
        names=wide.index.names,
    )
    table = pd.concat([wide, totals]).sort_index(level="dataset", sort_remaining=False)
    table = table.rename(index=METRICS, level="metric")
    return _with_winners(table).reset_index().rename_axis(columns=None)


def _with_winners(table: pd.DataFrame) -> pd.DataFrame:
    """A "winner <pld> vs <baseline>" column for each comparison whose heads are in `table`."""
    for pld, baseline in COMPARISONS.items():
        if pld in table and baseline in table:
            table[f"winner {pld} vs {baseline}"] = [
                _winner(row[pld], row[baseline], pld, baseline) for _, row in table.iterrows()
            ]
    return table


def _winner(score: float, baseline_score: float, name: str, baseline: str) -> str:
    if pd.isna(score) or pd.isna(baseline_score):
        return ""
    if score == baseline_score:
        return "tie"
    return name if score > baseline_score else baseline


def comparison_table(test_sets: pd.DataFrame) -> pd.DataFrame:
    """Our numbers next to the report's, the paper's and the official README's, per test set,
    with the differences (points of %). `model` names the published model (SSFormer-S/-L)."""
    published = published_table()
    sources = list(dict.fromkeys(published["source"]))
    keys = ["dataset", "test_set", "backbone", "head"]
    values = published.pivot_table(index=keys, columns="source", values=list(METRICS))
    models = published[published["model"] != ""].set_index(keys)["model"].to_dict()
    rows = []
    for run in test_sets.itertuples(index=False):
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


def table_markdown(table: pd.DataFrame, title: str, note: str = "") -> str:
    """A Markdown table with its title, the metric convention it uses and an optional note."""
    body = table.to_markdown(index=False, floatfmt=".2f")
    note = f"{note}\n\n" if note else ""
    return f"# {title}\n\n{CONVENTION_NOTE}\n\n{note}{body}\n"


def table_latex(table: pd.DataFrame, title: str) -> str:
    """A LaTeX table (booktabs) with the metric convention in its caption."""
    return table.to_latex(
        index=False,
        float_format="%.2f",
        na_rep="--",
        caption=f"{title}. {CONVENTION_NOTE}",
        escape=True,
    )
