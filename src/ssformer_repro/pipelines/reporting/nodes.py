"""Nodes of the reporting pipeline: every run's metrics in, the study's tables and figures out."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from ssformer_repro.evaluation.settings import EvaluationSettings
    from ssformer_repro.models.settings import ModelSizesSettings
    from ssformer_repro.reporting.settings import StatisticsSettings

RESULTS_TITLE = "Test mIoU, mDice, mNSD and mHD95 per dataset, backbone and head"
TEST_SETS_TITLE = "Test mIoU, mDice, mNSD and mHD95 per test set, backbone and head"
MODEL_SIZES_RECORD = "model_sizes_record.json"  # what the size table was counted from
NSD_GALLERY_RECORD = "nsd_gallery_record.json"  # what the NSD gallery was drawn from


def collect_runs(**test_metrics: dict[str, Any]) -> pd.DataFrame:
    """One row per run of the grid: dataset, backbone, head, test mDice, mIoU, mNSD, mHD95 (%)
    and the count of undefined HD95."""
    from ssformer_repro.reporting.tables import runs_frame

    return runs_frame(test_metrics.values())


def collect_test_sets(**test_metrics: dict[str, Any]) -> pd.DataFrame:
    """One row per run and test set (the PraNet benchmark's five, or the dataset's one)."""
    from ssformer_repro.reporting.tables import scores_per_test_set

    return scores_per_test_set(test_metrics.values())


def tabulate_test_sets(test_sets: pd.DataFrame) -> tuple[pd.DataFrame, str, str]:
    """Per test set (seen and unseen domains grouped), each head and the winners (CSV, MD, TeX)."""
    from ssformer_repro.reporting.tables import (
        per_test_set_table,
        table_convention,
        table_latex,
        table_markdown,
    )

    table, convention = per_test_set_table(test_sets), table_convention(test_sets)
    return (
        table,
        table_markdown(table, TEST_SETS_TITLE, convention=convention),
        table_latex(table, TEST_SETS_TITLE, convention=convention),
    )


def tabulate_results(runs: pd.DataFrame) -> tuple[pd.DataFrame, str, str, dict]:
    """The report's results table (CSV, Markdown, LaTeX) and a nested metrics.json for DVC."""
    from ssformer_repro.reporting.tables import (
        cell_means,
        method_note,
        results_table,
        table_convention,
        table_latex,
        table_markdown,
    )

    table, convention = results_table(runs), table_convention(runs)
    cells = cell_means(runs)
    dvc_metrics: dict[str, Any] = {}
    for cell in cells.itertuples(index=False):
        dvc_metrics.setdefault(cell.dataset, {}).setdefault(cell.backbone, {})[cell.head] = {
            "mdice": round(cell.mdice, 4),
            "miou": round(cell.miou, 4),
        }
    method = method_note(int(cells["n_seeds"].max()))
    markdown = table_markdown(table, RESULTS_TITLE, method=method, convention=convention)
    latex = table_latex(table, RESULTS_TITLE, method, convention=convention)
    return table, markdown, latex, dvc_metrics


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
    from ssformer_repro.reporting.verdict import image_scores_frame

    return image_scores_frame(test_scores)


def tabulate_verdict(
    image_scores: pd.DataFrame, statistics: StatisticsSettings, evaluation: EvaluationSettings
) -> pd.DataFrame:
    """Does each PLD beat SeD (and the official PLD the report's), cell by cell, as heads?
    (On the scores of `evaluation.tta`, which the tables name.)"""
    from ssformer_repro.reporting.published import report_differences
    from ssformer_repro.reporting.verdict import verdict_table

    return verdict_table(
        image_scores,
        report_differences(),
        alpha=statistics.alpha,
        margin=statistics.equivalence_margin,
        n_boot=statistics.bootstrap_samples,
        seed=statistics.seed,
        tta=evaluation.tta,
    )


def plan_seeds(
    image_scores: pd.DataFrame, statistics: StatisticsSettings, **histories: pd.DataFrame
) -> tuple[pd.DataFrame, str]:
    """What it would take to settle each comparison: seeds per head (or test images) for the
    planner's power, priced with the hours the runs took (histories keyed by run name)."""
    from ssformer_repro.reporting.power import power_markdown, power_table, training_hours
    from ssformer_repro.reporting.published import report_differences

    table = power_table(
        image_scores,
        report_differences(),
        training_hours(histories),
        alpha=statistics.alpha,
        target_power=statistics.power,
        target_difference=statistics.target_difference,
        planning_training_spread=statistics.planning_training_spread,
        max_seeds=statistics.max_seeds,
    )
    return table, power_markdown(table, statistics.planning_training_spread)


def write_verdict(
    verdict: pd.DataFrame, power: pd.DataFrame, statistics: StatisticsSettings
) -> tuple[str, str]:
    """verdict.md (with what more seeds would settle, from the power table) and verdict.tex."""
    from ssformer_repro.reporting.power import plans_summary
    from ssformer_repro.reporting.verdict import verdict_latex, verdict_markdown

    alpha, n_boot = statistics.alpha, statistics.bootstrap_samples
    return (
        verdict_markdown(verdict, alpha, n_boot, plans_summary(power)),
        verdict_latex(verdict, alpha, n_boot),
    )


def plot_verdict(verdict: pd.DataFrame):
    """The forest plot: each comparison's head-level difference, interval and outcome."""
    from ssformer_repro.reporting.figures import plot_forest

    return plot_forest(verdict)


def tabulate_where_heads_differ(
    image_scores: pd.DataFrame, statistics: StatisticsSettings, evaluation: EvaluationSettings
) -> tuple[pd.DataFrame, str, str]:
    """Each comparison by metric (Dice, NSD, HD95) and polyp stratum, head-level (CSV, MD, TeX)."""
    from ssformer_repro.reporting.where import where_latex, where_markdown, where_table

    tolerance = evaluation.nsd_tolerance
    margins = {"dice": statistics.equivalence_margin, **statistics.boundary_margins}
    minimum = statistics.min_stratum_images
    table = where_table(image_scores, margins, statistics.alpha, minimum)
    return table, where_markdown(table, minimum, tolerance), where_latex(table, minimum, tolerance)


def plot_where_heads_differ(where: pd.DataFrame):
    """The per-stratum forest plot of where_heads_differ."""
    from ssformer_repro.reporting.figures import plot_where

    return plot_where(where)


def plot_nsd_gallery(
    image_scores: pd.DataFrame,
    parameters: dict[str, Any],
    folder: Path,
    **inputs: Any,
) -> bytes:
    """The test images where two heads' NSD differs most, both outlines on the frame, as PNG
    bytes (inputs: `manifest__<dataset>` split manifests and run-name-keyed training
    summaries); drawn once per result, then read from its record in `folder`."""
    from ssformer_repro.config.checks import checked_run
    from ssformer_repro.evaluation.evaluate import TrainedModel
    from ssformer_repro.reporting.gallery import plot_nsd_gallery as gallery

    manifests = {
        key.removeprefix("manifest__"): value
        for key, value in inputs.items()
        if key.startswith("manifest__")
    }
    checkpoints = {
        name: summary["checkpoint"]
        for name, summary in inputs.items()
        if not name.startswith("manifest__")
    }

    def trained_model(run, checkpoint):  # noqa: ANN001, ANN202
        return TrainedModel(
            checked_run(run, parameters, ("evaluation",), weights=False), checkpoint
        )

    return gallery(
        image_scores, manifests, checkpoints, trained_model, record=folder / NSD_GALLERY_RECORD
    )


def tabulate_toolbox_metrics(**test_metrics: dict[str, Any]) -> tuple[pd.DataFrame, str]:
    """The PraNet-toolbox metrics of every run (mean/max Dice over thresholds, S, E, wF, MAE),
    with its boundary metrics beside (mNSD, mHD95, the count of undefined HD95)."""
    from ssformer_repro.reporting.tables import boundary_note

    rows = [
        {
            "dataset": m["dataset"],
            "test_set": test_set,
            "backbone": m["backbone"],
            "head": m["head"],
            **scores["toolbox"],
            "mnsd": scores["mnsd"],
            "mhd95": scores["mhd95"],
            "hd95_undefined": scores["hd95_undefined"],
        }
        for m in test_metrics.values()
        for test_set, scores in (m.get("test_sets") or {m["dataset"]: m}).items()
    ]
    table = pd.DataFrame(rows)
    tolerances = pd.DataFrame(
        {"nsd_tolerance": [m["nsd_tolerance"] for m in test_metrics.values()]}
    )
    note = (
        "# PraNet-toolbox metrics\n\nPrediction resized to the mask's size and min-max "
        "normalised; Dice/IoU over 256 thresholds (mean and max), S-measure, E-measure, "
        "weighted F-measure, MAE (pysodmetrics). Beside them, at threshold 0.5, as fractions: "
        f"{boundary_note(tolerances)}\n\n"
    )
    return table, note + table.to_markdown(index=False, floatfmt=".4f") + "\n"


def tabulate_model_sizes(
    runs: pd.DataFrame, model_sizes: ModelSizesSettings, folder: Path
) -> tuple[pd.DataFrame, str]:
    """Params, saved MB and forward GFLOPs of the study's models (every backbone x head of its
    runs), next to the report's sizes; counted once, then read from its record in `folder`."""
    from ssformer_repro.models.sizes import model_size_table

    size = model_sizes.image_size
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
