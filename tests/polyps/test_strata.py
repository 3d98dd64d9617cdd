"""Polyp-size thresholds from the training split, and each image's size and count strata."""

import numpy as np
import pandas as pd
import pytest

from ssformer_repro.polyps.strata import (
    count_polyps,
    count_stratum,
    size_stratum,
    size_thresholds,
)


def summary(rows: list[tuple[str, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"id": f"i{index}", "split": split, "foreground_fraction": fraction}
            for index, (split, fraction) in enumerate(rows)
        ]
    )


def test_thresholds_are_the_tertiles_of_the_training_images_with_a_polyp() -> None:
    training = [("train", value) for value in (0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07)]
    # An empty training mask and the other splits' images do not move the thresholds.
    others = [("train", 0.0), ("val", 0.9), ("test", 0.95), ("test", 0.001)]
    thresholds = size_thresholds(summary(training + others))
    # numpy's linear quantiles of 7 values: positions 2 and 4 -> 0.03 and 0.05.
    assert thresholds["small_below"] == pytest.approx(0.03)
    assert thresholds["large_from"] == pytest.approx(0.05)
    assert thresholds["training_images"] == 7


def test_a_kfold_dataset_takes_every_image() -> None:
    thresholds = size_thresholds(summary([("cv", value) for value in (0.1, 0.2, 0.3, 0.4)]))
    assert thresholds["small_below"] == pytest.approx(0.2)
    assert thresholds["large_from"] == pytest.approx(0.3)


def test_too_few_training_polyps_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="2 training image"):
        size_thresholds(summary([("train", 0.1), ("train", 0.2), ("test", 0.3), ("train", 0.0)]))
    with pytest.raises(ValueError, match="foreground_fraction"):
        size_thresholds(pd.DataFrame({"split": ["train"]}))


def test_size_strata_split_at_the_thresholds() -> None:
    thresholds = {"small_below": 0.03, "large_from": 0.05}
    strata = [size_stratum(value, thresholds) for value in (0.0, 0.01, 0.03, 0.049, 0.05, 0.5)]
    assert strata == ["none", "small", "medium", "medium", "large", "large"]


def test_polyps_are_8_connected_components() -> None:
    mask = np.zeros((10, 10), dtype=bool)
    assert count_polyps(mask) == 0 and count_stratum(0) == "none"
    mask[1:3, 1:3] = True
    mask[3, 3] = True  # touches the first polyp at a corner: still one
    assert count_polyps(mask) == 1 and count_stratum(1) == "one"
    mask[6:9, 6:9] = True
    assert count_polyps(mask) == 2 and count_stratum(2) == "several"
