"""Figures of the study: training curves of every run and mDice per backbone and head."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

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


VERDICT_COLOURS = {"better": "tab:green", "no": "tab:grey"}


def plot_forest(verdict: pd.DataFrame) -> Figure:
    """Forest plot: the paired mDice difference and its interval per backbone (and Total), one
    panel per dataset (rows) and comparison (columns); green where the verdict is significant."""
    from ssformer_repro.reporting.statistics import HEAD_NAMES

    datasets = list(dict.fromkeys(verdict["dataset"]))
    comparisons = list(dict.fromkeys(verdict["comparison"]))
    figure = Figure(
        figsize=(
            4.2 * len(comparisons),
            0.45 * verdict["backbone"].nunique() * len(datasets) + 1.8,
        ),
        layout="constrained",
    )
    axes = figure.subplots(len(datasets), len(comparisons), squeeze=False)
    for row, dataset in enumerate(datasets):
        for column, comparison in enumerate(comparisons):
            ax = axes[row, column]
            cells = verdict[(verdict["dataset"] == dataset) & (verdict["comparison"] == comparison)]
            positions = range(len(cells))[::-1]
            for y, cell in zip(positions, cells.itertuples(index=False), strict=True):
                colour = VERDICT_COLOURS["better" if "better" in cell.verdict else "no"]
                ax.errorbar(
                    cell.difference,
                    y,
                    xerr=[[cell.difference - cell.ci_low], [cell.ci_high - cell.difference]],
                    fmt="D" if cell.backbone == "Total" else "o",
                    color=colour,
                    capsize=3,
                )
            ax.axvline(0, color="black", linewidth=0.8)
            ax.set_yticks(list(positions), list(cells["backbone"]))
            first, second = comparison.split(" vs ")
            ax.set_title(
                f"{dataset}: {HEAD_NAMES[first]} − {HEAD_NAMES[second]}", fontsize="medium"
            )
            ax.set_xlabel("mDice difference (points) and 95 % interval")
    figure.suptitle("Paired mDice differences per backbone (green: significant after Holm)")
    return figure
