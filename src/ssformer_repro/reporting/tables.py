"""The study's tables from every run's test metrics: results, winners, totals, comparisons."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from ssformer_repro.reporting.published import published_table

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
    for pld, baseline in COMPARISONS.items():
        if pld in table and baseline in table:
            table[f"winner {pld} vs {baseline}"] = [
                _winner(row[pld], row[baseline], pld, baseline) for _, row in table.iterrows()
            ]
    return table.reset_index().rename_axis(columns=None)


def _winner(score: float, baseline_score: float, name: str, baseline: str) -> str:
    if pd.isna(score) or pd.isna(baseline_score):
        return ""
    if score == baseline_score:
        return "tie"
    return name if score > baseline_score else baseline


def comparison_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Our numbers next to the report's and the paper's, with the differences (points of %)."""
    published = published_table().pivot_table(
        index=["dataset", "backbone", "head"], columns="source", values=list(METRICS)
    )
    rows = []
    for run in runs.itertuples(index=False):
        key = (run.dataset, run.backbone, run.head)
        for metric, label in METRICS.items():
            ours = getattr(run, metric)
            row = {
                "dataset": run.dataset,
                "backbone": run.backbone,
                "head": run.head,
                "metric": label,
                "ours": ours,
            }
            for source in ("report", "paper"):
                column = (metric, source)
                value = (
                    published.at[key, column]
                    if key in published.index and column in published
                    else float("nan")
                )
                row[source] = value
                row[f"ours - {source}"] = ours - value
            rows.append(row)
    return pd.DataFrame(rows)


def table_markdown(table: pd.DataFrame, title: str) -> str:
    """A Markdown table with its title and the metric convention it uses."""
    body = table.to_markdown(index=False, floatfmt=".2f")
    return f"# {title}\n\n{CONVENTION_NOTE}\n\n{body}\n"


def table_latex(table: pd.DataFrame, title: str) -> str:
    """A LaTeX table (booktabs) with the metric convention in its caption."""
    return table.to_latex(
        index=False,
        float_format="%.2f",
        na_rep="--",
        caption=f"{title}. {CONVENTION_NOTE}",
        escape=True,
    )
