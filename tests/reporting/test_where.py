"""Where the heads differ: metrics and strata through the verdict's head-level test."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ssformer_repro.reporting.simulation import Truth
from ssformer_repro.reporting.where import domain_groups, where_markdown, where_table
from tests.reporting.test_verdict import study

MARGINS = {"dice": 1.0, "nsd": 1.0, "hd95": 0.5}


def stratified(rng: np.random.Generator, small_gain: float = 0.0) -> pd.DataFrame:
    """Three heads, 3 seeds, 120 images in strata; `pld` gains `small_gain` points of NSD (and
    loses as much HD95, in % of the diagonal) on small polyps only, in every training."""
    frame = study(Truth(training_sd=0.3), seeds=3, images=120, rng=rng, heads=("pld", "sed"))
    number = frame["id"].str[1:].astype(int)
    frame["size_stratum"] = np.array(["small", "medium", "large"])[number % 3]
    frame["count_stratum"] = np.where(number % 10 == 0, "several", "one")
    gain = np.where((frame["size_stratum"] == "small") & (frame["head"] == "pld"), small_gain, 0)
    frame["nsd"] = frame["dice"] + gain / 100
    frame["hd95"] = 0.03 + rng.normal(0, 0.001, len(frame)) - gain / 1000
    return frame


def test_a_gain_on_small_polyps_is_found_there_and_nowhere_else() -> None:
    table = where_table(stratified(np.random.default_rng(1), small_gain=6.0), MARGINS)
    rows = table.set_index(["metric", "stratum"])
    assert rows.loc[("NSD", "small"), "verdict"] == "`pld` better"
    assert rows.loc[("HD95", "small"), "verdict"] == "`pld` better"  # lower HD95 is better
    assert rows.loc[("HD95", "small"), "difference"] < 0
    for stratum in ("medium", "large"):
        assert "better" not in rows.loc[("NSD", stratum), "verdict"]
    assert rows.loc[("Dice", "small"), "verdict"] != "`pld` better"


def test_families_are_per_metric_and_undefined_hd95_is_counted() -> None:
    frame = stratified(np.random.default_rng(2))
    undefined = frame["id"].isin(["i0001", "i0002"]) & (frame["head"] == "sed")
    frame.loc[undefined & (frame["seed"] == 0), "hd95"] = np.nan
    table = where_table(frame, MARGINS)
    assert set(table["family"]) == {5}  # 1 comparison x 5 strata, in each metric
    hd95_all = table[(table["metric"] == "HD95") & (table["stratum"] == "all")].iloc[0]
    assert (hd95_all["n_images"], hd95_all["n_undefined"]) == (118, 2)
    rows = table.set_index(["metric", "stratum"])
    assert rows.loc[("HD95", "medium"), "n_undefined"] == 1  # i0001 is medium (1 % 3)
    assert rows.loc[("HD95", "small"), "n_undefined"] == 0
    dice_all = table[(table["metric"] == "Dice") & (table["stratum"] == "all")].iloc[0]
    assert dice_all["n_images"] == 120
    text = where_markdown(table, 5, 0.005)
    assert "118 (2)" in text and "one family per metric" in text


def test_a_stratum_with_too_few_images_is_not_tested() -> None:
    frame = stratified(np.random.default_rng(3))
    number = frame["id"].str[1:].astype(int)
    frame["count_stratum"] = np.where(number < 3, "several", "one")
    table = where_table(frame, MARGINS, min_images=5)
    several = table[table["stratum"] == "several polyps"]
    assert (several["verdict"] == "too few images (3)").all()
    assert several["ci_low"].isna().all()
    assert set(table["family"]) == {4}


def test_the_pranet_benchmark_is_read_by_domain() -> None:
    names = pd.Series(["Kvasir", "CVC-ClinicDB", "CVC-300", "ETIS-LaribPolypDB", "MyClinic"])
    assert domain_groups(names) == [
        ("seen (mean)", ["CVC-ClinicDB", "Kvasir"]),
        ("unseen (mean)", ["CVC-300", "ETIS-LaribPolypDB"]),
        ("MyClinic", ["MyClinic"]),
    ]
    assert domain_groups(pd.Series(["kvasir", "kvasir"])) == [("kvasir", ["kvasir"])]


def test_no_row_names_a_winner_while_its_interval_includes_zero() -> None:
    table = where_table(stratified(np.random.default_rng(4), small_gain=3.0), MARGINS)
    winners = table["verdict"].str.contains("better")
    assert winners.any()
    assert not (winners & (table["ci_low"] <= 0) & (table["ci_high"] >= 0)).any()
    with pytest.raises(ValueError, match="No comparison"):
        where_table(stratified(np.random.default_rng(5)).query("head == 'pld'"), MARGINS)
