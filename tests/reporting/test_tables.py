"""The study's tables from hand-made run metrics: winners, totals, published comparison."""

from __future__ import annotations

import pandas as pd
import pytest

from ssformer_repro.reporting.published import REPORT_RESULTS, published_table
from ssformer_repro.reporting.tables import (
    cell_means,
    comparison_table,
    results_table,
    runs_frame,
    scores_per_test_set,
    table_convention,
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


def boundary(mnsd: float = 0.8, mhd95: float = 0.05, hd95_undefined: int = 0) -> dict:
    """A run's boundary metrics as test_metrics.json holds them (fractions, a count)."""
    return {"mnsd": mnsd, "mhd95": mhd95, "hd95_undefined": hd95_undefined}


def metrics(dataset: str, backbone: str, head: str, dice: float, iou: float, **more) -> dict:
    """A run's test metrics: these mDice and mIoU, default boundary metrics unless `more` says."""
    return {
        "dataset": dataset,
        "backbone": backbone,
        "head": head,
        "mdice": dice,
        "miou": iou,
        "nsd_tolerance": 0.005,
        "n_images": 10,
        **boundary(),
        **more,
    }


@pytest.fixture
def runs() -> pd.DataFrame:
    return runs_frame(metrics(*key, *scores) for key, scores in HAND_MADE.items())


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
    assert list(table["backbone"]) == [
        name for name in ("mit_b0", "mit_b1", "Total") for _ in range(5)
    ]
    assert (
        list(table["metric"])
        == [
            "mIoU",
            "mDice",
            "mNSD",
            "mHD95 (% of diagonal)",
            "HD95 undefined (images)",
        ]
        * 3
    )

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
    one_backbone = results_table(runs[runs["backbone"] == "mit_b0"])
    assert "Total" not in set(one_backbone["backbone"])  # it would repeat mit_b0's rows


def test_markdown_and_latex_state_the_metric_convention(runs: pd.DataFrame) -> None:
    table = results_table(runs)
    convention = table_convention(runs)
    markdown = table_markdown(table, "Results", convention=convention)
    assert "threshold 0.5" in markdown and "averaged over images" in markdown
    assert "within 0.50% of the frame's diagonal" in markdown and "Metrics Reloaded" in markdown
    assert "| mit_b0" in markdown
    latex = table_latex(table, "Results", convention=convention)
    assert "\\begin{tabular}" in latex and "threshold 0.5" in latex and "HD95" in latex


def test_a_lower_hd95_wins_and_undefined_counts_have_no_winner() -> None:
    runs = runs_frame(
        [
            metrics("kvasir", "mit_b0", "pld", 0.9, 0.8, **boundary(0.7, 0.04, 3)),
            metrics("kvasir", "mit_b0", "sed", 0.9, 0.8, **boundary(0.8, 0.06, 1)),
        ]
    )
    table = results_table(runs)
    hd95 = row(table, "mit_b0", "mHD95 (% of diagonal)")
    assert (hd95["pld"], hd95["sed"]) == (pytest.approx(4.0), pytest.approx(6.0))
    assert hd95["winner pld vs sed"] == "pld"
    assert row(table, "mit_b0", "mNSD")["winner pld vs sed"] == "sed"
    undefined = row(table, "mit_b0", "HD95 undefined (images)")
    assert (undefined["pld"], undefined["sed"]) == (3, 1)
    assert undefined["winner pld vs sed"] == ""


def test_a_seeds_folds_pool_hd95_over_the_images_where_it_is_defined() -> None:
    # Two folds of one seed: 10 images with 2 undefined at mHD95 1 %, and 10 with none at 4 %.
    # Pooled: (8 x 1 + 10 x 4) / 18 = 2.67 %, with 2 undefined; mNSD over all 20 images.
    folds = [
        metrics(
            "kvasir",
            "mit_b0",
            "pld",
            0.9,
            0.8,
            seed=42,
            fold=0,
            n_images=10,
            **boundary(0.5, 0.01, 2),
        ),
        metrics(
            "kvasir",
            "mit_b0",
            "pld",
            0.9,
            0.8,
            seed=42,
            fold=1,
            n_images=10,
            **boundary(0.7, 0.04, 0),
        ),
    ]
    (cell,) = cell_means(runs_frame(folds)).itertuples(index=False)
    assert cell.mhd95 == pytest.approx(48 / 18)
    assert cell.hd95_undefined == 2
    assert cell.mnsd == pytest.approx(60.0)


def test_test_metrics_without_boundary_metrics_are_refused_with_the_fix() -> None:
    old = {
        "name": "kvasir.mit_b0.sed.seed42",
        "dataset": "kvasir",
        "backbone": "mit_b0",
        "head": "sed",
        "mdice": 0.9,
        "miou": 0.8,
    }
    with pytest.raises(ValueError, match=r"kvasir.mit_b0.sed.seed42.*re-run its evaluation"):
        runs_frame([old])


def test_comparison_puts_published_numbers_next_to_ours() -> None:
    runs = scores_per_test_set([metrics("kvasir", "mit_b2", "sed", 0.9, 0.8)])
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
    runs = [
        metrics(
            "kvasir",
            "mit_b0",
            head,
            dice + 0.01,
            iou + 0.01,
            tta="flips",
            without_tta={"mdice": dice, "miou": iou, **boundary(mhd95=0.07)},
        )
        for (_, backbone, head), (dice, iou) in HAND_MADE.items()
        if backbone == "mit_b0"
    ]
    table = results_table(runs_frame(runs))
    assert list(table["metric"][:4]) == [
        "mIoU (no TTA)",
        "mIoU (TTA: flips)",
        "mDice (no TTA)",
        "mDice (TTA: flips)",
    ]
    assert row(table, "mit_b0", "mDice (no TTA)")["pld"] == pytest.approx(90.0)
    assert row(table, "mit_b0", "mDice (TTA: flips)")["pld"] == pytest.approx(91.0)
    assert row(table, "mit_b0", "mHD95 (% of diagonal) (no TTA)")["pld"] == pytest.approx(7.0)
    assert row(table, "mit_b0", "mHD95 (% of diagonal) (TTA: flips)")["pld"] == pytest.approx(5.0)
    per_set = scores_per_test_set(runs)
    assert per_set["mdice_without_tta"].tolist() == pytest.approx([90.0, 92.0])
