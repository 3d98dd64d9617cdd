"""Tests for the example-prediction figures and the choice of examples."""

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from ssformer_repro.evaluation.figures import (
    COLUMN_TITLES,
    OUTCOME_COLOURS,
    OVERLAY_ALPHA,
    error_overlay,
    plot_prediction_examples,
    select_examples,
)


def _example(image_id: str, dice: float, label: str) -> dict:
    rng = np.random.default_rng(len(image_id))
    mask = np.zeros((24, 32), dtype=bool)
    mask[6:18, 8:24] = True
    return {
        "id": image_id,
        "dice": dice,
        "label": label,
        "image": rng.integers(0, 256, size=(24, 32, 3), dtype=np.uint8),
        "mask": mask,
        "probability": rng.random((24, 32)),
    }


def test_select_examples_picks_best_median_worst_with_ties_by_id():
    per_image = pd.DataFrame({"id": ["e", "d", "c", "b", "a"], "dice": [0.9, 0.9, 0.5, 0.1, 0.1]})
    assert select_examples(per_image) == {"best": "d", "median": "c", "worst": "a"}


def test_select_examples_median_of_even_count_is_the_lower_one():
    per_image = pd.DataFrame({"id": ["a", "b", "c", "d"], "dice": [0.4, 0.3, 0.2, 0.1]})
    assert select_examples(per_image)["median"] == "c"


def test_select_examples_rejects_empty_and_nan():
    with pytest.raises(ValueError, match="empty"):
        select_examples(pd.DataFrame({"id": [], "dice": []}))
    with pytest.raises(ValueError, match="NaN"):
        select_examples(pd.DataFrame({"id": ["a"], "dice": [float("nan")]}))


def test_plot_prediction_examples_has_four_panels_per_row_and_saves_png(tmp_path):
    examples = [
        _example("best", 0.95, "best"),
        _example("mid", 0.7, "median"),
        _example("w", 0.1, "worst"),
    ]
    figure = plot_prediction_examples(examples, title="Kvasir test")

    assert isinstance(figure, Figure)
    assert len(figure.axes) == 3 * len(COLUMN_TITLES)
    assert [ax.get_title() for ax in figure.axes[: len(COLUMN_TITLES)]] == list(COLUMN_TITLES)
    assert figure.axes[4].get_ylabel() == "median\nmid\nDice 0.700"

    path = tmp_path / "examples.png"
    figure.savefig(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_prediction_examples_rejects_mismatched_shapes_and_missing_keys():
    example = _example("a", 0.5, "best")
    example["mask"] = example["mask"][:, :10]
    with pytest.raises(ValueError, match="'a'"):
        plot_prediction_examples([example])
    with pytest.raises(KeyError, match="probability"):
        plot_prediction_examples([{"id": "a", "dice": 0.5, "image": None, "mask": None}])
    with pytest.raises(ValueError, match="no examples"):
        plot_prediction_examples([])


def test_error_overlay_colours_true_false_positives_and_false_negatives():
    image = np.zeros((1, 4, 3))
    mask = np.array([[True, False, True, False]])
    prediction = np.array([[True, True, False, False]])
    overlay = error_overlay(image, mask, prediction)
    expected = [
        OVERLAY_ALPHA * np.asarray(OUTCOME_COLOURS["true positive"]),
        OVERLAY_ALPHA * np.asarray(OUTCOME_COLOURS["false positive"]),
        OVERLAY_ALPHA * np.asarray(OUTCOME_COLOURS["false negative"]),
        np.zeros(3),
    ]
    np.testing.assert_allclose(overlay[0], expected)
