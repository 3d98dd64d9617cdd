"""Figures of the study: training curves of every run and mDice per backbone and head."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from ssformer_repro.grid.runs import GridRun


def plot_training_curves(histories: dict[str, pd.DataFrame]) -> Figure:
    """Training loss and validation mDice per epoch, one line per run, one column per dataset.

    `histories` is keyed by run name (`GridRun.name`).
    """
    if not histories:
        raise ValueError("No training histories to plot.")
    runs = {name: GridRun.parse(name) for name in histories}
    datasets = sorted({run.dataset for run in runs.values()})
    figure = Figure(figsize=(6 * len(datasets), 7), layout="constrained")
    axes = figure.subplots(2, len(datasets), squeeze=False)
    for column, dataset in enumerate(datasets):
        loss_ax, dice_ax = axes[0, column], axes[1, column]
        for name, history in sorted(histories.items()):
            if runs[name].dataset != dataset:
                continue
            label = name.removeprefix(f"{dataset}{GridRun.SEPARATOR}")
            loss_ax.plot(history["epoch"], history["train_loss"], label=label)
            dice_ax.plot(history["epoch"], 100 * history["val_mdice"], label=label)
        loss_ax.set(title=f"{dataset}: training loss", xlabel="epoch", ylabel="BCE + Dice loss")
        dice_ax.set(title=f"{dataset}: validation mDice", xlabel="epoch", ylabel="mDice (%)")
        dice_ax.legend(fontsize="small")
    return figure


def plot_mdice_bars(runs: pd.DataFrame) -> Figure:
    """Grouped bars of test mDice (%) per backbone, one bar per head, one panel per dataset."""
    datasets = sorted(runs["dataset"].unique())
    figure = Figure(figsize=(6 * len(datasets), 4), layout="constrained")
    axes = figure.subplots(1, len(datasets), squeeze=False)[0]
    for ax, dataset in zip(axes, datasets, strict=True):
        wide = runs[runs["dataset"] == dataset].pivot_table(
            index="backbone", columns="head", values="mdice"
        )
        wide.plot.bar(ax=ax, rot=0)
        ax.set(title=f"{dataset}: test mDice", xlabel="backbone", ylabel="mDice (%)")
        ax.set_ylim(max(0.0, wide.min().min() - 5), 100)
        ax.legend(title="head", fontsize="small")
    return figure


OUTCOME_COLOURS = {
    "A better": "tab:green",
    "B better": "tab:red",
    "equivalent": "tab:blue",
    "inconclusive": "tab:grey",
    "needs 2+ seeds": "lightgrey",
}


def plot_forest(verdict: pd.DataFrame) -> Figure:
    """Forest plot of the verdict: per dataset (rows of panels) and comparison (columns), each
    backbone's and Total's head-level difference with the interval the verdict reads, coloured
    by its outcome; the equivalence margin shaded; one x axis shared within a dataset. Rows with
    one training per head show their difference alone (no head-level interval exists)."""
    from ssformer_repro.reporting.names import HEAD_NAMES

    datasets = list(dict.fromkeys(verdict["dataset"]))
    comparisons = list(dict.fromkeys(verdict["comparison"]))
    labels = verdict["backbone"].where(
        verdict["test_set"] == verdict["dataset"], verdict["test_set"] + " · " + verdict["backbone"]
    )
    verdict = verdict.assign(label=labels)
    height = 0.42 * verdict.groupby(["dataset", "comparison"]).size().max() * len(datasets)
    figure = Figure(figsize=(4.4 * len(comparisons), height + 2.2), layout="constrained")
    axes = figure.subplots(len(datasets), len(comparisons), squeeze=False)
    for row, dataset in enumerate(datasets):
        of_dataset = verdict[verdict["dataset"] == dataset]
        bounds = pd.concat([of_dataset[c] for c in ("ci_low", "ci_high", "difference")]).dropna()
        margin = float(of_dataset["margin"].iloc[0])
        reach = max(margin * 1.5, float(bounds.abs().max()) * 1.08)
        for column, comparison in enumerate(comparisons):
            ax = axes[row, column]
            cells = of_dataset[of_dataset["comparison"] == comparison]
            positions = list(range(len(cells)))[::-1]
            ax.axvspan(-margin, margin, color="tab:blue", alpha=0.08, linewidth=0)
            ax.axvline(0, color="black", linewidth=0.8)
            for y, cell in zip(positions, cells.itertuples(index=False), strict=True):
                colour = OUTCOME_COLOURS[cell.outcome]
                marker = "D" if cell.backbone == "Total" else "o"
                if pd.isna(cell.ci_low):
                    ax.plot(cell.difference, y, marker, color=colour, markeredgecolor="grey")
                    continue
                ax.errorbar(
                    cell.difference,
                    y,
                    xerr=[[cell.difference - cell.ci_low], [cell.ci_high - cell.difference]],
                    fmt=marker,
                    color=colour,
                    capsize=3,
                )
            ax.set_yticks(positions, list(cells["label"]))
            ax.set_xlim(-reach, reach)
            first, second = comparison.split(" vs ")
            ax.set_title(
                f"{dataset}: {HEAD_NAMES[first]} − {HEAD_NAMES[second]}", fontsize="medium"
            )
            ax.set_xlabel("mDice difference, points (interval at its Holm level)")
    handles = [
        Line2D([], [], marker="o", linestyle="", color=colour, label=outcome)
        for outcome, colour in OUTCOME_COLOURS.items()
    ]
    handles.append(Patch(color="tab:blue", alpha=0.15, label="equivalence margin"))
    figure.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize="small")
    figure.suptitle(
        "Head-level differences of mDice (A − B): A better, B better, equivalent or not"
    )
    return figure


def plot_where(where: pd.DataFrame) -> Figure:
    """Per-stratum forest plot of where_heads_differ: one panel per dataset (and test-set group,
    rows) and metric (columns, one x axis each), each comparison and stratum's head-level
    difference with the interval its verdict reads, coloured by outcome (for HD95 a negative
    difference is head A's better boundary); the metric's margin shaded."""
    groups = list(dict.fromkeys(zip(where["dataset"], where["test_set"], strict=True)))
    metrics = list(dict.fromkeys(where["metric"]))
    rows_per_panel = where.groupby(["dataset", "test_set", "metric"]).size().max()
    figure = Figure(
        figsize=(4.6 * len(metrics), 0.3 * rows_per_panel * len(groups) + 2.2),
        layout="constrained",
    )
    axes = figure.subplots(len(groups), len(metrics), squeeze=False)
    for column, metric in enumerate(metrics):
        of_metric = where[where["metric"] == metric]
        bounds = pd.concat([of_metric[c] for c in ("ci_low", "ci_high", "difference")]).dropna()
        margin = float(of_metric["margin"].iloc[0])
        reach = max(margin * 1.5, float(bounds.abs().max()) * 1.08)
        for row, (dataset, test_set) in enumerate(groups):
            ax = axes[row, column]
            cells = of_metric[
                (of_metric["dataset"] == dataset) & (of_metric["test_set"] == test_set)
            ]
            positions = list(range(len(cells)))[::-1]
            ax.axvspan(-margin, margin, color="tab:blue", alpha=0.08, linewidth=0)
            ax.axvline(0, color="black", linewidth=0.8)
            for y, cell in zip(positions, cells.itertuples(index=False), strict=True):
                colour = OUTCOME_COLOURS.get(cell.outcome, "lightgrey")
                if pd.isna(cell.ci_low):
                    ax.plot(cell.difference, y, "o", color=colour, markeredgecolor="grey")
                    continue
                ax.errorbar(
                    cell.difference,
                    y,
                    xerr=[[cell.difference - cell.ci_low], [cell.ci_high - cell.difference]],
                    fmt="o",
                    color=colour,
                    capsize=3,
                )
            several = where["comparison"].nunique() > 1
            labels = [
                f"{c.stratum} · {_short(c.comparison)}" if several else c.stratum
                for c in cells.itertuples()
            ]
            ax.set_yticks(positions, labels, fontsize="small")
            ax.set_xlim(-reach, reach)
            where_label = dataset if test_set == dataset else f"{dataset} {test_set}"
            unit = cells["unit"].iloc[0] if len(cells) else ""
            direction = " (lower better)" if metric == "HD95" else ""
            ax.set_title(f"{where_label}: {metric}{direction}", fontsize="medium")
            ax.set_xlabel(f"A − B, {unit}")
    handles = [
        Line2D([], [], marker="o", linestyle="", color=colour, label=outcome)
        for outcome, colour in OUTCOME_COLOURS.items()
    ]
    handles.append(Patch(color="tab:blue", alpha=0.15, label="equivalence margin"))
    figure.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize="small")
    pairs = ", ".join(_short(c) for c in dict.fromkeys(where["comparison"]))
    figure.suptitle(f"Where do the heads differ? By metric and polyp stratum (A − B: {pairs})")
    return figure


def _short(comparison: str) -> str:
    """`pld vs sed` as a paper names the heads, shortly."""
    from ssformer_repro.reporting.names import HEAD_NAMES

    first, second = comparison.split(" vs ")
    return f"{HEAD_NAMES[first]} − {HEAD_NAMES[second]}"
