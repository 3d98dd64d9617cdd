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
