"""The verdict table and the power table on simulated per-image scores with a known truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ssformer_repro.reporting import statistics as st
from ssformer_repro.reporting.power import (
    plans_summary,
    power_markdown,
    power_table,
    training_hours,
)
from ssformer_repro.reporting.published import TEST_SET_DOMAINS
from ssformer_repro.reporting.simulation import Truth, scores_frame, simulate
from ssformer_repro.reporting.verdict import verdict_latex, verdict_markdown, verdict_table


def study(
    truth: Truth,
    seeds: int = 3,
    images: int = 100,
    backbones: int = 1,
    rng: np.random.Generator | None = None,
    heads: tuple[str, ...] = ("pld", "sed"),
) -> pd.DataFrame:
    """Image scores of one dataset: `pld` is head A of `truth`, `sed` head B; `pld_linear`
    (if asked for) another head equal to `sed` as an architecture."""
    rng = rng or np.random.default_rng(0)
    frame = scores_frame(simulate(truth, seeds, images, rng, backbones), dataset="kvasir")
    frame = frame.assign(backbone=frame["backbone"].str.replace("b", "mit_b"))
    if "pld_linear" in heads:
        equal = simulate(Truth(difference=0), seeds, images, rng, backbones)
        linear = scores_frame(equal, dataset="kvasir")
        linear = linear[linear["head"] == "pld"].assign(
            head="pld_linear", backbone=lambda f: f["backbone"].str.replace("b", "mit_b")
        )
        frame = pd.concat([frame, linear], ignore_index=True)
    return frame[frame["head"].isin(heads)]


def test_rows_totals_and_the_family_of_distinct_comparisons() -> None:
    three = ("pld", "pld_linear", "sed")
    one_backbone = verdict_table(study(Truth(), heads=three), {}, n_boot=200)
    assert list(one_backbone["backbone"]) == ["mit_b0"] * 3  # no Total repeating it
    assert list(one_backbone["comparison"]) == [
        "pld vs sed",
        "pld_linear vs sed",
        "pld vs pld_linear",
    ]
    assert (one_backbone["family"] == 3).all()
    two = verdict_table(study(Truth(), backbones=2, heads=three), {}, n_boot=200)
    assert list(dict.fromkeys(two["backbone"])) == ["mit_b0", "mit_b1", "Total"]
    assert (two["family"] == 9).all()
    assert two["level"].min() == pytest.approx(1 - 0.05 / 9)


def test_one_seed_names_no_winning_head_but_compares_the_trained_models() -> None:
    table = verdict_table(study(Truth(difference=5.0), seeds=1), {}, n_boot=200)
    row = table.iloc[0]
    assert row["verdict"] == "needs 2+ seeds per head"
    assert np.isnan(row["ci_low"]) and np.isnan(row["p"]) and np.isnan(row["p_a_beats_b"])
    assert row["models_low"] > 0  # five points on 100 images: these two models differ
    text = verdict_markdown(table, 0.05, 200)
    assert "needs 2+ seeds per head" in text and "these trained models" in text


def test_a_clear_difference_is_a_winner_with_p_a_beats_b_near_one() -> None:
    table = verdict_table(study(Truth(difference=4.0, training_sd=0.5), seeds=5), {}, n_boot=500)
    row = table.iloc[0]
    assert row["verdict"] == "`pld` better" and row["ci_low"] > 0
    assert row["p_a_beats_b"] == pytest.approx(1.0)
    assert row["p_a_beats_b_low"] > 0.5


def test_steady_equal_heads_are_equivalent_within_the_margin() -> None:
    truth = Truth(training_sd=0.2, noise_sd=2.0)
    table = verdict_table(study(truth, seeds=5, images=200), {}, n_boot=200, margin=1.0)
    assert table.iloc[0]["verdict"] == "equivalent within ±1"
    assert table.iloc[0]["equivalence_p"] < 0.025


def test_no_row_names_a_winner_while_its_interval_includes_zero() -> None:
    rng = np.random.default_rng(11)
    rows = []
    for difference in (0.0, 0.5, 1.0, 2.0, 3.0, -1.5):
        for seeds in (1, 2, 3):
            truth = Truth(difference=difference, training_sd=1.0, noise_sd=4.0)
            frame = study(truth, seeds=seeds, images=40, backbones=2, rng=rng)
            rows.append(verdict_table(frame, {}, n_boot=100))
    table = pd.concat(rows)
    winners = table["outcome"].isin([st.A_BETTER, st.B_BETTER])
    assert winners.any()
    includes_zero = (table["ci_low"] <= 0) & (table["ci_high"] >= 0)
    assert not (winners & includes_zero).any()
    assert (table.loc[winners, "holm_p"] < 0.05).all()


def test_whole_tables_of_equal_heads_rarely_name_a_winner() -> None:
    """Three backbones and their Total, Holm over the four rows, 3 seeds: the issue's case."""
    rng = np.random.default_rng(12)
    named = 0
    tables = 100
    for _ in range(tables):
        frame = study(Truth(training_sd=1.5, noise_sd=3.0), seeds=3, backbones=3, rng=rng)
        table = verdict_table(frame, {}, n_boot=100)
        named += table["outcome"].isin([st.A_BETTER, st.B_BETTER]).any()
    assert named / tables <= 0.08


def test_four_test_images_give_an_interval_and_a_verdict_that_agree() -> None:
    table = verdict_table(study(Truth(difference=30.0), seeds=3, images=4), {}, n_boot=200)
    row = table.iloc[0]
    excludes_zero = row["ci_low"] > 0 or row["ci_high"] < 0
    assert excludes_zero == (row["verdict"] == "`pld` better")


def test_p_values_never_print_as_zero() -> None:
    table = verdict_table(study(Truth(difference=6.0, training_sd=0.1), seeds=5), {}, n_boot=200)
    assert table.iloc[0]["holm_p"] < 0.001
    text = verdict_markdown(table, 0.05, 200)
    assert "< 0.001" in text and "| 0.00 " not in text


def test_the_report_is_confirmed_contradicted_or_not_told() -> None:
    frame = study(Truth(difference=-4.0, training_sd=0.3), seeds=4)
    table = verdict_table(frame, {("kvasir", "mit_b0"): 0.45}, n_boot=200)
    row = table.iloc[0]
    assert row["report_difference"] == pytest.approx(0.45) and row["report_winner"] == "pld"
    assert row["our_data"] == "contradicts"


def pranet_frame(rng: np.random.Generator) -> pd.DataFrame:
    """Five PraNet test sets of different sizes, scored by the same trainings."""
    frames = []
    for index, name in enumerate(TEST_SET_DOMAINS):
        part = study(Truth(difference=1.0), seeds=3, images=10 + 5 * index, rng=rng)
        frames.append(part.assign(dataset="pranet", test_set=name, id=part["id"] + name))
    return pd.concat(frames, ignore_index=True)


def test_the_pranet_benchmark_is_judged_per_test_set_and_domain() -> None:
    table = verdict_table(pranet_frame(np.random.default_rng(5)), {}, n_boot=200)
    assert list(table["test_set"]) == [
        *sorted(TEST_SET_DOMAINS),
        "seen (mean)",
        "unseen (mean)",
    ]
    seen = table.set_index("test_set").loc["seen (mean)"]
    assert seen["n_images"] == 10 + 15  # Kvasir (10) and CVC-ClinicDB (15)
    parts = table.set_index("test_set")
    # a domain's mean is the mean of its sets' means (each set weighing the same)
    assert seen["mdice_A"] == pytest.approx(
        (parts.loc["Kvasir", "mdice_A"] + parts.loc["CVC-ClinicDB", "mdice_A"]) / 2
    )
    assert "each test set weighing the same" in verdict_markdown(table, 0.05, 200)


def test_a_missing_run_is_a_clear_message() -> None:
    frame = study(Truth(), seeds=3)
    frame = frame[~((frame["head"] == "sed") & (frame["seed"] == 2))]
    frame = frame[~((frame["head"] == "sed") & (frame["seed"] == 1) & (frame["id"] == "i0003"))]
    with pytest.raises(ValueError, match=r"not scored on the same test images.*seed 1"):
        verdict_table(frame, {}, n_boot=100)
    only_one_head = frame[frame["head"] == "pld"]
    with pytest.raises(ValueError, match="needs at least two of"):
        verdict_table(only_one_head, {}, n_boot=100)


def test_markdown_and_latex_state_the_method() -> None:
    table = verdict_table(study(Truth(), seeds=3), {}, n_boot=300)
    text = verdict_markdown(table, 0.05, 300, "## What it would take\n")
    assert "Welch-Satterthwaite" in text and "Holm-corrected over the 1 distinct" in text
    assert "averaged over images" in text  # the metric convention
    assert text.endswith("## What it would take\n")
    assert "\\begin{tabular}" in verdict_latex(table, 0.05, 300)
    flips = verdict_table(study(Truth(), seeds=3), {}, n_boot=300, tta="flips")
    assert "with TTA (flips)" in verdict_markdown(flips, 0.05, 300)


def histories(frame: pd.DataFrame, seconds: float) -> dict[str, pd.DataFrame]:
    """Histories of each run of `frame`: three epochs of `seconds` each."""
    runs = frame[["dataset", "backbone", "head", "seed"]].drop_duplicates()
    return {
        f"{r.dataset}.{r.backbone}.{r.head}.seed{r.seed}": pd.DataFrame(
            {"epoch": [1, 2, 3], "epoch_seconds": [seconds] * 3}
        )
        for r in runs.itertuples(index=False)
    }


def test_the_power_table_plans_seeds_and_prices_them() -> None:
    frame = study(Truth(difference=0.5, training_sd=1.0), seeds=3)
    hours = training_hours(histories(frame, 1200.0))  # 1 hour per training
    table = power_table(
        frame, {("kvasir", "mit_b0"): 0.2}, hours, 0.05, 0.8, 1.0, 1.5, 50
    ).set_index("difference_of")
    assert list(table.index) == ["the report's", "set"]
    one_point = table.loc["set"]
    assert 3 < one_point["seeds_needed"] <= 50
    assert one_point["trainings_to_add"] == 2 * (one_point["seeds_needed"] - 3)
    assert one_point["hours_to_add"] == pytest.approx(one_point["trainings_to_add"])
    assert np.isnan(table.loc["the report's", "seeds_needed"])  # 0.2 points: more than 50
    text = power_markdown(table.reset_index(), 1.5)
    assert "more than 50" in text and "80% power" in text
    assert "more than 50 (+0.20)" in plans_summary(table.reset_index())


def test_one_seed_plans_say_the_spread_is_assumed() -> None:
    frame = study(Truth(difference=1.0), seeds=1)
    table = power_table(frame, {}, training_hours({}), 0.05, 0.8, 1.0, 1.5, 50)
    assert table["spread_assumed"].all()
    assert "assumed" in power_markdown(table, 1.5)


def test_the_tables_read_back_from_csv_render_as_the_pipeline_renders_them(tmp_path) -> None:
    """The pipeline's later nodes get the verdict and power tables from their CSV files."""
    from ssformer_repro.reporting.figures import plot_forest

    frame = study(Truth(difference=1.0), seeds=1, backbones=2, heads=("pld", "pld_linear", "sed"))
    table = verdict_table(frame, {("kvasir", "mit_b0"): 0.45, ("kvasir", "mit_b1"): 0.3})
    power = power_table(frame, {}, training_hours({}), 0.05, 0.8, 1.0, 1.5, 50)
    table.to_csv(tmp_path / "verdict.csv", index=False)
    power.to_csv(tmp_path / "power.csv", index=False)
    table, power = pd.read_csv(tmp_path / "verdict.csv"), pd.read_csv(tmp_path / "power.csv")
    text = verdict_markdown(table, 0.05, 2000, plans_summary(power))
    assert "needs 2+ seeds per head" in text and "| nan" not in text
    assert "| nan" not in power_markdown(power, 1.5)
    assert plot_forest(table).axes
