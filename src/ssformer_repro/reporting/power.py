"""What it would take to settle each comparison: trainings (and test images) for 80 % power.

For every row of the verdict and every difference worth finding (the report's for that cell,
and `statistics.target_difference`), `statistics.plan` finds the smallest number of trainings
per head whose head-level test, at the table's corrected level (alpha over the number of
distinct comparisons: Holm's first step, a conservative stand-in for the later ones), finds the
difference with the wanted power, from the spreads measured in the table. Where a head has one
training the spread between trainings is not measured, and `statistics.planning_training_spread`
stands in for it (the plan says "assumed"). Each plan is priced with the hours the cell's
trainings took (their `history.csv`'s epoch_seconds).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from ssformer_repro.grid.runs import GridRun
from ssformer_repro.reporting import statistics as st
from ssformer_repro.reporting.tables import paper_names, table_markdown
from ssformer_repro.reporting.verdict import Cell, cells, report_difference


def training_hours(histories: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Hours each training seed took, per dataset, backbone, head and seed (a k-fold seed's
    folds summed), from the runs' histories keyed by run name."""
    rows = []
    for name, history in histories.items():
        run = GridRun.parse(name)
        seconds = history["epoch_seconds"].sum() if "epoch_seconds" in history else np.nan
        rows.append({**run.fields(), "hours": seconds / 3600})
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=["dataset", "backbone", "head", "seed", "hours"])
    keys = ["dataset", "backbone", "head", "seed"]
    return frame.groupby(keys, as_index=False)["hours"].sum(min_count=1)


def power_table(
    image_scores: pd.DataFrame,
    report_differences: Mapping[tuple[str, str], float],
    hours: pd.DataFrame,
    alpha: float,
    target_power: float,
    target_difference: float,
    planning_training_spread: float,
    max_seeds: int,
) -> pd.DataFrame:
    """One row per verdict comparison and difference to find (see the module doc)."""
    every = list(cells(image_scores))
    family = sum(min(st.components(c.scores).trainings) > 1 for c in every) or len(every)
    level = alpha / family
    rows = []
    for cell in every:
        parts = st.components(cell.scores)
        wanted = {"the report's": report_difference(report_differences, cell)}
        wanted["set"] = target_difference
        for kind, difference in wanted.items():
            if pd.isna(difference):
                continue
            plan = st.plan(
                parts,
                difference,
                level,
                target_power,
                max_seeds,
                assumed_spread=planning_training_spread,
            )
            rows.append(_row(cell, parts, plan, kind, level, target_power, hours, max_seeds))
    return pd.DataFrame(rows)


def _row(
    cell: Cell,
    parts: st.Components,
    plan: st.Plan,
    kind: str,
    level: float,
    target_power: float,
    hours: pd.DataFrame,
    max_seeds: int,
) -> dict:
    """A power-table row: the cell, the spreads it rests on, the plan and its cost."""
    have = dict(zip(_keys(cell), parts.trainings, strict=True))
    per_training = _hours_per_training(cell, hours)
    needed = plan.trainings
    extra = {key: max(0, needed - n) for key, n in have.items()} if needed else {}
    cost = sum(extra[key] * per_training.get(key, np.nan) for key in extra) if extra else np.nan
    images = math.ceil(plan.image_factor * cell.scores.n_images) if plan.image_factor else np.nan
    return {
        "dataset": cell.dataset,
        "test_set": cell.test_set,
        "backbone": cell.backbone,
        "comparison": f"{cell.first} vs {cell.second}",
        "difference_of": kind,
        "difference": plan.difference,
        "measured_difference": parts.difference,
        "training_sd": np.nan if plan.assumed_spread else _spread(parts),
        "spread_assumed": plan.assumed_spread,
        "seeds_now": min(parts.trainings),
        "images_now": cell.scores.n_images,
        "level": level,
        "power": target_power,
        "power_now": plan.power_now,
        "seeds_needed": needed if needed else np.nan,
        "more_than": np.nan if needed else max_seeds,
        "trainings_to_add": sum(extra.values()) if extra else np.nan,
        "hours_per_training": np.mean(list(per_training.values())) if per_training else np.nan,
        "hours_to_add": cost,
        "images_needed": images,
    }


def _keys(cell: Cell) -> list[tuple[str, str]]:
    """(head, backbone) in the order of `components`' per-training lists."""
    return [(head, b) for head in (cell.first, cell.second) for b in cell.backbones]


def _hours_per_training(cell: Cell, hours: pd.DataFrame) -> dict[tuple[str, str], float]:
    """Mean hours of one training seed per (head, backbone) of the cell, where recorded."""
    of_dataset = hours[hours["dataset"] == cell.dataset]
    means = of_dataset.groupby(["head", "backbone"])["hours"].mean()
    return {key: float(means[key]) for key in _keys(cell) if key in means and pd.notna(means[key])}


def _spread(parts: st.Components) -> float:
    """The spread between trainings of a head's mean score, pooled over the cell's heads."""
    variances = [t + n for t, n in zip(parts.training, parts.noise, strict=True)]
    return float(np.sqrt(np.mean(variances)))


def _seeds_text(row: pd.Series) -> str:
    if pd.isna(row["seeds_needed"]):
        if pd.isna(row["more_than"]):
            return "unknown"
        return f"more than {int(row['more_than'])}"
    return f"{int(row['seeds_needed'])}"


def power_display(table: pd.DataFrame) -> pd.DataFrame:
    """The power table as a reader wants it: the difference, the spreads, what it takes."""
    shown = pd.DataFrame(
        {
            "dataset": table["dataset"],
            "test set": table["test_set"],
            "backbone": table["backbone"],
            "comparison": table["comparison"],
            "to find": [
                f"{d:+.2f} ({kind})"
                for d, kind in zip(table["difference"], table["difference_of"], strict=True)
            ],
            "spread between trainings": [
                "assumed" if assumed else f"{sd:.2f}"
                for sd, assumed in zip(table["training_sd"], table["spread_assumed"], strict=True)
            ],
            "power now": ["" if pd.isna(p) else f"{p:.0%}" for p in table["power_now"]],
            "seeds per head": [_seeds_text(row) for _, row in table.iterrows()],
            "trainings to add": [
                "" if pd.isna(n) else f"{int(n)}" for n in table["trainings_to_add"]
            ],
            "hours to add": ["" if pd.isna(h) else f"{h:.2f}" for h in table["hours_to_add"]],
            "or test images": [
                "not reachable"
                if pd.isna(n) and not assumed
                else ("" if pd.isna(n) else f"{int(n)}")
                for n, assumed in zip(table["images_needed"], table["spread_assumed"], strict=True)
            ],
        }
    )
    if (table["test_set"] == table["dataset"]).all():
        shown = shown.drop(columns="test set")
    return shown


def power_markdown(table: pd.DataFrame, planning_training_spread: float) -> str:
    """power.md: what it would take to settle each comparison, and how it was worked out."""
    if table.empty:
        return "# What it would take\n\nNo comparison to plan.\n"
    level, power = float(table["level"].iloc[0]), float(table["power"].iloc[0])
    method = (
        f"For each comparison and each difference to find (the report's, where it has that "
        f"cell, and the one set in statistics.target_difference), the smallest number of "
        f"trainings per head (and backbone) whose head-level test (reporting/statistics.py) "
        f"finds it with {power:.0%} power at {level:.4g}, the table's corrected level (alpha "
        f"over its distinct comparisons), from the spreads measured here; where a head has one "
        f"training, its spread is assumed to be {planning_training_spread:g} points "
        f'(statistics.planning_training_spread). "or test images": the test images that would '
        f'do it with today\'s trainings instead ("not reachable": the spread between '
        f"trainings alone is too large). Hours: what this machine's trainings of the cell took "
        f"(their history.csv), times the trainings to add."
    )
    return table_markdown(
        power_display(table),
        "What it would take to settle each comparison",
        method=method,
        numparse=False,
    )


def plans_summary(table: pd.DataFrame) -> str:
    """Under the verdict: per comparison, the seeds per head each difference would need."""
    if table.empty:
        return ""
    keys = ["dataset", "test_set", "backbone", "comparison"]
    rows = {}
    for _, row in table.iterrows():
        entry = rows.setdefault(tuple(row[keys]), {})
        cost = "" if pd.isna(row["hours_to_add"]) else f", {row['hours_to_add']:.2f} h more"
        entry[row["difference_of"]] = f"{_seeds_text(row)} ({row['difference']:+.2f}{cost})"
        entry["assumed"] = entry.get("assumed", False) or bool(row["spread_assumed"])
    shown = pd.DataFrame(
        [
            {
                **dict(zip(["dataset", "test set", "backbone", "comparison"], key, strict=True)),
                "seeds per head for the report's difference": entry.get("the report's", ""),
                "seeds per head for the set difference": entry.get("set", ""),
                "spread between trainings": "assumed" if entry["assumed"] else "measured",
            }
            for key, entry in rows.items()
        ]
    )
    if (shown["test set"] == shown["dataset"]).all():
        shown = shown.drop(columns="test set")
    if not (shown["seeds per head for the report's difference"] != "").any():
        shown = shown.drop(columns="seeds per head for the report's difference")
    power = float(table["power"].iloc[0])
    intro = (
        f"Seeds per head (and backbone) for {power:.0%} power at the table's corrected level, "
        "from the spreads measured here; power.md has the details and the test images that "
        "would do instead."
    )
    body = paper_names(shown).to_markdown(index=False, disable_numparse=True)
    return f"## What it would take\n\n{intro}\n\n{body}\n"
