"""Nodes of the reporting pipeline: every run's metrics in, the study's tables and figures out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

RESULTS_TITLE = "Test mIoU and mDice per dataset, backbone and head"
TEST_SETS_TITLE = "Test mIoU and mDice per test set, backbone and head"
MODEL_SIZES_RECORD = "model_sizes_record.json"  # what the size table was counted from


def collect_runs(**test_metrics: dict[str, Any]) -> pd.DataFrame:
    """One row per run of the grid: dataset, backbone, head, test mDice and mIoU in %."""
    from ssformer_repro.reporting.tables import runs_frame

    return runs_frame(test_metrics.values())


def collect_test_sets(**test_metrics: dict[str, Any]) -> pd.DataFrame:
    """One row per run and test set (the PraNet benchmark's five, or the dataset's one)."""
    from ssformer_repro.reporting.tables import scores_per_test_set

    return scores_per_test_set(test_metrics.values())


def tabulate_test_sets(test_sets: pd.DataFrame) -> tuple[pd.DataFrame, str, str]:
    """Per test set (seen and unseen domains grouped), each head and the winners (CSV, MD, TeX)."""
    from ssformer_repro.reporting.tables import per_test_set_table, table_latex, table_markdown

    table = per_test_set_table(test_sets)
    return table, table_markdown(table, TEST_SETS_TITLE), table_latex(table, TEST_SETS_TITLE)


def tabulate_results(runs: pd.DataFrame) -> tuple[pd.DataFrame, str, str, dict]:
    """The report's results table (CSV, Markdown, LaTeX) and a nested metrics.json for DVC."""
    from ssformer_repro.reporting.tables import (
        cell_means,
        method_note,
        results_table,
        table_latex,
        table_markdown,
    )

    table = results_table(runs)
    cells = cell_means(runs)
    dvc_metrics: dict[str, Any] = {}
    for cell in cells.itertuples(index=False):
        dvc_metrics.setdefault(cell.dataset, {}).setdefault(cell.backbone, {})[cell.head] = {
            "mdice": round(cell.mdice, 4),
            "miou": round(cell.miou, 4),
        }
    method = method_note(int(cells["n_seeds"].max()))
    markdown = table_markdown(table, RESULTS_TITLE, method=method)
    return table, markdown, table_latex(table, RESULTS_TITLE, method), dvc_metrics


def compare_with_published(test_sets: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Our numbers next to the report's, the paper's and the official README's, per test set."""
    from ssformer_repro.reporting.tables import comparison_table, table_markdown

    table = comparison_table(test_sets)
    note = (
        "SSFormer-S is MiT-B2 + PLD and SSFormer-L MiT-B4 + PLD (the official code's heads, our "
        "`pld`), trained on the PraNet TrainDataset; the report's PLD is our `pld_linear`."
    )
    method = "Differences of means, without a test: the published numbers are one run each."
    return table, table_markdown(table, "Our results next to the published ones", note, method)


def collect_image_scores(**test_scores: pd.DataFrame) -> pd.DataFrame:
    """Every run's per-image test scores in one table, with the run's dimensions (keyed by run
    name): the data of the paired statistics."""
    from ssformer_repro.reporting.statistics import image_scores_frame

    return image_scores_frame(test_scores)


def tabulate_verdict(
    image_scores: pd.DataFrame, statistics: dict[str, Any], evaluation: dict[str, Any]
) -> tuple[pd.DataFrame, str, str]:
    """Does each PLD beat SeD (and the official PLD the report's), cell by cell, beyond noise?
    (On the scores of `evaluation.tta`, which the tables name.)"""
    from ssformer_repro.reporting.published import report_winners
    from ssformer_repro.reporting.statistics import verdict_latex, verdict_markdown, verdict_table

    table = verdict_table(
        image_scores,
        report_winners(),
        n_boot=statistics["bootstrap_samples"],
        seed=statistics["seed"],
        alpha=statistics["alpha"],
        level=statistics["level"],
        tta=evaluation.get("tta", "none"),
    )
    return table, verdict_markdown(table, statistics), verdict_latex(table, statistics)


def plot_verdict(verdict: pd.DataFrame):
    """The forest plot: each comparison's difference and interval per backbone and Total."""
    from ssformer_repro.reporting.figures import plot_forest

    return plot_forest(verdict)


def tabulate_toolbox_metrics(**test_metrics: dict[str, Any]) -> tuple[pd.DataFrame, str]:
    """The PraNet-toolbox metrics of every run (mean/max Dice over thresholds, S, E, wF, MAE)."""
    rows = [
        {
            "dataset": m["dataset"],
            "test_set": test_set,
            "backbone": m["backbone"],
            "head": m["head"],
            **scores["toolbox"],
        }
        for m in test_metrics.values()
        for test_set, scores in (m.get("test_sets") or {m["dataset"]: m}).items()
    ]
    table = pd.DataFrame(rows)
    note = (
        "# PraNet-toolbox metrics\n\nPrediction resized to the mask's size and min-max "
        "normalised; Dice/IoU over 256 thresholds (mean and max), S-measure, E-measure, "
        "weighted F-measure, MAE (pysodmetrics).\n\n"
    )
    return table, note + table.to_markdown(index=False, floatfmt=".4f") + "\n"


def tabulate_model_sizes(
    runs: pd.DataFrame, model_sizes: dict[str, Any], folder: Path
) -> tuple[pd.DataFrame, str]:
    """Params, saved MB and forward GFLOPs of the study's models (every backbone x head of its
    runs), next to the report's sizes; counted once, then read from its record in `folder`."""
    from ssformer_repro.models.sizes import model_size_table

    size = model_sizes["image_size"]
    models = zip(runs["backbone"], runs["head"], strict=True)
    table = model_size_table(models, size=size, record=folder / MODEL_SIZES_RECORD)
    note = (
        f"# Model sizes\n\nMB = bytes of `torch.save(model.state_dict())` / 1e6 (the reproduction report's "
        f'"Size"); GFLOPs = 2 x MACs of one forward pass at {size} x {size} (matmuls and '
        "convolutions), each head with its default options.\n\n"
    )
    return table, note + table.to_markdown(index=False, floatfmt=".4g") + "\n"


def plot_study_figures(runs: pd.DataFrame, **histories: pd.DataFrame):
    """Training curves of every run (histories keyed by run name) and test mDice bars."""
    from ssformer_repro.reporting.figures import plot_mdice_bars, plot_training_curves

    return plot_training_curves(histories), plot_mdice_bars(runs)
