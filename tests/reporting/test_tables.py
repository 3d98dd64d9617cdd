"""The study's tables from hand-made run metrics: winners, totals, published comparison."""

from __future__ import annotations

import pandas as pd
import pytest

from ssformer_repro.reporting.published import REPORT_RESULTS, published_table
from ssformer_repro.reporting.tables import (
    comparison_table,
    results_table,
    runs_frame,
    scores_per_test_set,
    table_latex,
    table_markdown,
)

# (dataset, backbone, head) -> (mdice, miou) as fractions, the way test_metrics.json holds them.
HAND_MADE = {
    ("kvasir", "mit_b0", "pld"): (0.90, 0.80),
    ("kvasir", "mit_b0", "sed"): (0.92, 0.84),
    ("kvasir", "mit_b1", "pld"): (0.96, 0.90),
    ("kvasir", "mit_b1", "sed"): (0.94, 0.90),
}


@pytest.fixture
def runs() -> pd.DataFrame:
    return runs_frame(
        {"dataset": d, "backbone": b, "head": h, "mdice": dice, "miou": iou}
        for (d, b, h), (dice, iou) in HAND_MADE.items()
    )


def row(table: pd.DataFrame, backbone: str, metric: str) -> pd.Series:
    selected = table[(table["backbone"] == backbone) & (table["metric"] == metric)]
    assert len(selected) == 1
    return selected.iloc[0]


def test_results_table_has_report_shape_winners_and_totals(runs: pd.DataFrame) -> None:
    table = results_table(runs)
    assert list(table.columns) == [
        "dataset",
        "backbone",
        "metric",
        "pld",
        "sed",
        "winner pld vs sed",
    ]
    assert list(table["backbone"]) == ["mit_b0", "mit_b0", "mit_b1", "mit_b1", "Total", "Total"]
    assert list(table["metric"]) == ["mIoU", "mDice"] * 3

    assert row(table, "mit_b0", "mDice")["winner pld vs sed"] == "sed"
    assert row(table, "mit_b1", "mDice")["winner pld vs sed"] == "pld"
    assert row(table, "mit_b1", "mIoU")["winner pld vs sed"] == "tie"

    total_dice = row(table, "Total", "mDice")
    assert total_dice["pld"] == pytest.approx(93.0)
    assert total_dice["sed"] == pytest.approx(93.0)
    total_iou = row(table, "Total", "mIoU")
    assert total_iou["pld"] == pytest.approx(85.0)
    assert total_iou["sed"] == pytest.approx(87.0)
    assert total_iou["winner pld vs sed"] == "sed"


def test_markdown_and_latex_state_the_metric_convention(runs: pd.DataFrame) -> None:
    table = results_table(runs)
    markdown = table_markdown(table, "Results")
    assert "threshold 0.5" in markdown and "averaged over images" in markdown
    assert "| mit_b0" in markdown
    latex = table_latex(table, "Results")
    assert "\\begin{tabular}" in latex and "threshold 0.5" in latex


def test_comparison_puts_published_numbers_next_to_ours() -> None:
    runs = scores_per_test_set(
        [{"dataset": "kvasir", "backbone": "mit_b2", "head": "sed", "mdice": 0.9, "miou": 0.8}]
    )
    table = comparison_table(runs).set_index("metric")
    assert table.loc["mDice", "report"] == pytest.approx(92.12)
    assert table.loc["mDice", "ours - report"] == pytest.approx(90.0 - 92.12)
    assert table.loc["mIoU", "report"] == pytest.approx(85.38)
    assert pd.isna(table.loc["mIoU", "paper"])


def test_published_table_reproduces_the_reports_totals() -> None:
    means = (
        published_table()
        .query("source == 'report'")
        .groupby(["dataset", "head"])
        .mean(numeric_only=True)
    )
    # Section 4.1 of the reproduction report: ClinicDB PLD 91.64/95.64, SeD 91.47/95.54;
    # Kvasir PLD 85.41/92.13, SeD 85.67/92.28 (mIoU/mDice, %).
    expected = {
        ("clinicdb", "pld_linear"): (91.64, 95.64),
        ("clinicdb", "sed"): (91.47, 95.54),
        ("kvasir", "pld_linear"): (85.41, 92.13),
        ("kvasir", "sed"): (85.67, 92.28),
    }
    for key, (miou, mdice) in expected.items():
        assert means.loc[key, "miou"] == pytest.approx(miou, abs=0.006)
        assert means.loc[key, "mdice"] == pytest.approx(mdice, abs=0.006)
    assert len(REPORT_RESULTS) == 12


def test_no_runs_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="grid"):
        runs_frame([])


def test_scores_with_tta_stand_beside_those_without_each_labelled() -> None:
    metrics = [
        {
            "dataset": "kvasir",
            "backbone": "mit_b0",
            "head": head,
            "mdice": dice + 0.01,
            "miou": iou + 0.01,
            "tta": "flips",
            "without_tta": {"mdice": dice, "miou": iou},
        }
        for (_, backbone, head), (dice, iou) in HAND_MADE.items()
        if backbone == "mit_b0"
    ]
    table = results_table(runs_frame(metrics))
    assert list(table["metric"][:4]) == [
        "mIoU (no TTA)",
        "mIoU (TTA: flips)",
        "mDice (no TTA)",
        "mDice (TTA: flips)",
    ]
    assert row(table, "mit_b0", "mDice (no TTA)")["pld"] == pytest.approx(90.0)
    assert row(table, "mit_b0", "mDice (TTA: flips)")["pld"] == pytest.approx(91.0)
    per_set = scores_per_test_set(metrics)
    assert per_set["mdice_without_tta"].tolist() == pytest.approx([90.0, 92.0])
