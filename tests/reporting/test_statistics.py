"""The verdict's statistics on simulated per-image scores with a known truth (fixed seeds, so the
tests are deterministic; the bounds leave room for sampling noise around the nominal rates)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ssformer_repro.reporting.statistics import (
    NO_DIFFERENCE,
    holm,
    paired_differences,
    paired_test,
    verdict,
    verdict_markdown,
    verdict_table,
    wilcoxon_p,
)

STATISTICS = {"bootstrap_samples": 500, "level": 0.95, "alpha": 0.05, "seed": 0}


def realistic_differences(rng: np.random.Generator, n_images: int, truth: float) -> np.ndarray:
    """Per-image Dice differences in points: most images differ little, a few a lot (symmetric
    around the true mean difference, as between two good segmenters)."""
    small = rng.normal(0, 1.5, n_images)
    large = rng.normal(0, 10, n_images)
    return truth + np.where(rng.random(n_images) < 0.15, large, small)


def test_the_interval_covers_the_true_difference_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(0)
    tables, truth = 400, 1.0
    covered = 0
    for _ in range(tables):
        test = paired_test(realistic_differences(rng, 100, truth)[None], 1000, rng)
        covered += test.low <= truth <= test.high
    assert 0.92 <= covered / tables <= 0.98


def test_without_a_true_difference_few_single_comparisons_are_significant() -> None:
    rng = np.random.default_rng(1)
    comparisons = 400
    significant = sum(
        wilcoxon_p(realistic_differences(rng, 100, 0.0)) < 0.05 for _ in range(comparisons)
    )
    assert significant / comparisons <= 0.08


def test_holm_keeps_the_chance_of_any_false_verdict_in_a_table_low() -> None:
    rng = np.random.default_rng(2)
    tables = 200
    with_any = 0
    for _ in range(tables):
        p = [wilcoxon_p(realistic_differences(rng, 100, 0.0)) for _ in range(6)]
        with_any += min(holm(p)) < 0.05
    assert with_any / tables <= 0.08


def test_a_two_point_difference_on_100_images_is_found() -> None:
    rng = np.random.default_rng(3)
    test = paired_test(realistic_differences(rng, 100, 2.0)[None], 2000, rng)
    assert test.p_value < 0.05 and test.low > 0
    assert verdict(test.difference, test.p_value, "pld", "sed", 0.05) == "`pld` better"


def test_holm_against_a_hand_computed_case() -> None:
    # sorted: 0.005 x 4 = 0.02; 0.01 x 3 = 0.03; 0.03 x 2 = 0.06; 0.04 x 1 = 0.04 -> max 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])


def test_wilcoxon_against_a_hand_computed_case() -> None:
    # |d| ranks 1..5, negative rank 2: W- = 2; P(W <= 2) = 3/32 exactly, two-sided 6/32.
    assert wilcoxon_p(np.array([1.0, -2.0, 3.0, 4.0, 5.0])) == pytest.approx(6 / 32)
    assert wilcoxon_p(np.zeros(10)) == 1.0


def test_seeds_are_resampled_as_a_second_level() -> None:
    rng = np.random.default_rng(4)
    images = realistic_differences(rng, 200, 1.0)
    consistent = np.stack([images, images + 0.01, images - 0.01])
    # The same per-image differences, but the seeds disagree by 3 points in their means.
    scattered = np.stack([images - 3, images, images + 3])
    narrow = paired_test(consistent, 2000, np.random.default_rng(5))
    wide = paired_test(scattered, 2000, np.random.default_rng(5))
    assert narrow.difference == pytest.approx(wide.difference)
    assert (wide.high - wide.low) > 2 * (narrow.high - narrow.low)
    assert wide.n_seeds == 3 and wide.n_images == 200


def image_scores(difference: float = 0.03, seeds=(1, 2), backbones=("b0", "b2")) -> pd.DataFrame:
    rng = np.random.default_rng(6)
    rows = []
    for backbone in backbones:
        base = rng.uniform(0.7, 0.95, 60)
        for seed in seeds:
            for head, shift in (("sed", 0.0), ("pld", difference), ("pld_linear", 0.0)):
                dice = np.clip(base + shift + rng.normal(0, 0.01, 60), 0, 1)
                rows += [
                    {
                        "dataset": "kvasir",
                        "backbone": backbone,
                        "head": head,
                        "seed": seed,
                        "id": f"i{i}",
                        "dice": d,
                        "iou": d / (2 - d),
                    }
                    for i, d in enumerate(dice)
                ]
    return pd.DataFrame(rows)


def test_the_table_has_each_cell_a_total_and_the_reports_winners() -> None:
    winners = {("kvasir", "b0"): "sed", ("kvasir", "Total"): "pld"}
    table = verdict_table(image_scores(), winners, n_boot=500)
    assert list(table["backbone"].unique()) == ["b0", "b2", "Total"]
    assert list(table["comparison"].unique()) == [
        "pld vs sed",
        "pld_linear vs sed",
        "pld vs pld_linear",
    ]
    pld = table[table["comparison"] == "pld vs sed"].set_index("backbone")
    assert (pld["verdict"] == "`pld` better").all()
    assert pld.loc["b0", "difference"] == pytest.approx(3.0, abs=0.5)
    assert pld.loc["b0", "our_data"] == "contradicts" and pld.loc["Total", "our_data"] == "confirms"
    assert pld.loc["b2", "our_data"] == ""  # no report cell
    assert pld.loc["b0", "n_seeds"] == 2 and pld.loc["Total", "n_images"] == 120
    assert len(pld.loc["b0", "mdice_A_per_seed"].split(", ")) == 2
    linear = table[table["comparison"] == "pld_linear vs sed"]
    assert (linear["verdict"] == NO_DIFFERENCE).all()
    assert (table["holm_p"] >= table["wilcoxon_p"]).all()

    text = verdict_markdown(table, STATISTICS)
    assert "PLD (official) vs SeD" in text and "PLD (report) is `pld_linear`" in text
    assert "percentile bootstrap (500 resamples" in text and "Holm-corrected over the 9" in text
    assert "averaged over images" in text  # the metric convention


def test_a_missing_run_is_a_clear_message() -> None:
    scores = image_scores()
    scores = scores[
        ~((scores["head"] == "sed") & (scores["seed"] == 2) & (scores["backbone"] == "b2"))
    ]
    with pytest.raises(
        ValueError, match=r"pld and sed were not scored on the same seeds.*sed seed 2"
    ):
        verdict_table(scores, {}, n_boot=100)
    with pytest.raises(ValueError, match=r"paired_test needs"):
        paired_test(np.zeros(3), 10, np.random.default_rng(0))
    only_one_head = image_scores()[lambda frame: frame["head"] == "pld"]
    with pytest.raises(ValueError, match="needs at least two of"):
        verdict_table(only_one_head, {}, n_boot=100)


def test_paired_differences_line_up_images_across_heads() -> None:
    scores = image_scores(difference=0.0).sample(frac=1, random_state=0)  # shuffled rows
    differences = paired_differences(scores[scores["backbone"] == "b0"], "pld", "sed")
    assert differences.shape == (2, 60)
    assert np.abs(differences).max() < 10  # same images matched, not shuffled ones


def test_the_method_sentence_says_whether_scores_used_tta() -> None:
    statistics = {"bootstrap_samples": 200, "level": 0.95, "alpha": 0.05, "seed": 0}
    plain = verdict_table(image_scores(), {}, n_boot=200)
    flips = verdict_table(image_scores(), {}, n_boot=200, tta="flips")
    assert "scored without test-time augmentation" in verdict_markdown(plain, statistics)
    assert "scored with test-time augmentation (flips)" in verdict_markdown(flips, statistics)
