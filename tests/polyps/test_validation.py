from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pytest

from ssformer_repro.polyps.layouts import SamplePair
from ssformer_repro.polyps.validation import (
    DatasetValidationError,
    dataset_overview,
    summarise_pairs,
)
from tests.polyps.conftest import (
    ellipse_mask,
    noise_rgb,
    random_rgb,
    truncate,
    write_image,
    write_mask,
    write_pair,
)


def _pair(root: Path, stem: str, **sizes: int) -> SamplePair:
    image, mask = write_pair(root, "images", "masks", f"{stem}.png", **sizes)
    return SamplePair(stem, image.as_posix(), mask.as_posix(), "all")


def test_summary_has_sizes_and_foreground_fraction_in_pair_order(tmp_path: Path) -> None:
    pairs = [_pair(tmp_path, "b", height=32, width=48), _pair(tmp_path, "a", height=40, width=24)]

    summary = summarise_pairs(pairs)

    assert list(summary.columns) == ["id", "height", "width", "foreground_fraction"]
    assert summary["id"].tolist() == ["b", "a"]
    assert summary[["height", "width"]].to_numpy().tolist() == [[32, 48], [40, 24]]
    assert summary["foreground_fraction"].tolist() == pytest.approx(
        [ellipse_mask(32, 48).mean(), ellipse_mask(40, 24).mean()]
    )


def test_jpeg_mask_fraction_is_close_to_the_true_one(tmp_path: Path) -> None:
    truth = ellipse_mask(64, 64)
    image = write_image(tmp_path / "f.jpg", random_rgb(64, 64))
    mask = write_mask(tmp_path / "m.jpg", truth, quality=75)
    summary = summarise_pairs([SamplePair("f", str(image), str(mask), "all")], progress=True)
    assert summary.loc[0, "foreground_fraction"] == pytest.approx(truth.mean(), abs=0.01)


def test_all_problems_are_raised_together_naming_each_file(tmp_path: Path) -> None:
    good = _pair(tmp_path, "good")
    cut = _pair(tmp_path, "cut")
    truncate(write_image(Path(cut.image_path), noise_rgb(64, 64)))
    mismatched = _pair(tmp_path, "mismatched", height=32, width=48)
    write_mask(Path(mismatched.mask_path), ellipse_mask(40, 48))

    with pytest.raises(DatasetValidationError) as error:
        summarise_pairs([good, cut, mismatched])

    message = str(error.value)
    assert "2 of 3 image/mask pairs are invalid" in message
    assert f"cut: {cut.image_path}: cannot decode image" in message
    assert (
        f"image {mismatched.image_path} is 32x48 but mask {mismatched.mask_path} is 40x48"
        in message
    )
    assert "good" not in message.replace(str(tmp_path), "")


def test_masks_without_foreground_warn_and_keep_their_row(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    polyp = _pair(tmp_path, "polyp")
    empty = _pair(tmp_path, "no_polyp")
    write_mask(Path(empty.mask_path), np.zeros((32, 48), bool))

    with caplog.at_level(logging.WARNING, logger="ssformer_repro.polyps.validation"):
        summary = summarise_pairs([polyp, empty])

    assert summary["foreground_fraction"].tolist()[1] == 0
    assert len(summary) == 2
    assert "1 masks have no foreground" in caplog.text and "no_polyp" in caplog.text


def test_jpeg_noise_is_counted_and_only_masks_with_grey_regions_are_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # 40 JPEG masks of every quality and size (grey values along their edges only) and one with
    # regions of 60, 128 and 200, as a broken export writes them.
    pairs = []
    for index in range(40):
        side = (64, 160, 352, 600)[index % 4]
        stem = f"jpeg{index:02d}"
        image = write_image(tmp_path / "images" / f"{stem}.jpg", random_rgb(side, side))
        mask = write_mask(
            tmp_path / "masks" / f"{stem}.jpg", ellipse_mask(side, side), quality=30 + index * 2
        )
        pairs.append(SamplePair(stem, str(image), str(mask), "all"))
    broken = ellipse_mask(96, 96).astype(np.uint8) * 255
    broken[:20, :30], broken[40:56, 40:56], broken[80:, 70:] = 60, 128, 200
    image = write_image(tmp_path / "images" / "broken.png", random_rgb(96, 96))
    mask = write_image(tmp_path / "masks" / "broken.png", broken)
    pairs.append(SamplePair("broken", str(image), str(mask), "all"))

    with caplog.at_level(logging.INFO, logger="ssformer_repro.polyps.validation"):
        summarise_pairs(pairs)

    (noise,) = [record for record in caplog.records if "JPEG" in record.getMessage()]
    assert noise.levelno == logging.INFO
    assert noise.getMessage().startswith("40 of 41 masks have more than two grey values along")
    (warning,) = [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert "1 of 41 masks have mid-grey regions" in warning.getMessage()
    assert re.search(r"check them: broken \([\d,]+ px of 60\.\.200\)$", warning.getMessage())


def test_a_grey_band_along_the_edge_is_noise_but_beyond_a_jpeg_block_a_region(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def pair(stem: str, band: int) -> SamplePair:
        mask = np.zeros((64, 64), np.uint8)
        mask[:, 32:] = 255
        mask[:, 32 - band : 32] = 100  # grey, below the threshold: background
        image = write_image(tmp_path / "images" / f"{stem}.png", random_rgb(64, 64))
        return SamplePair(stem, str(image), str(write_image(tmp_path / f"{stem}.png", mask)), "all")

    with caplog.at_level(logging.INFO, logger="ssformer_repro.polyps.validation"):
        summarise_pairs([pair("narrow", 12), pair("wide", 14)])

    assert "1 of 2 masks have more than two grey values along their edges only" in caplog.text
    assert "check them: wide (128 px of 100..100)" in caplog.text  # its 13th and 14th columns


def test_overview_of_whole_dataset_is_one_row(tmp_path: Path) -> None:
    summary = summarise_pairs([_pair(tmp_path, "a", height=32), _pair(tmp_path, "b", height=40)])

    overview = dataset_overview(summary, "kvasir")

    assert overview.to_dict("records") == [
        {
            "dataset": "kvasir",
            "split": "all",
            "count": 2,
            "height_min": 32,
            "height_median": 36.0,
            "height_max": 40,
            "width_min": 48,
            "width_median": 48.0,
            "width_max": 48,
            "mean_foreground_fraction": pytest.approx(summary["foreground_fraction"].mean()),
            "empty_masks": 0,
        }
    ]


def test_overview_has_one_row_per_split_in_training_order_plus_all(tmp_path: Path) -> None:
    pairs = [_pair(tmp_path, stem) for stem in "abcd"]
    summary = summarise_pairs(pairs).assign(split=["test", "train", "val", "train"])
    summary.loc[3, "foreground_fraction"] = 0.0

    overview = dataset_overview(summary, "clinicdb")

    assert overview["split"].tolist() == ["train", "val", "test", "all"]
    assert overview["count"].tolist() == [2, 1, 1, 4]
    assert overview["empty_masks"].tolist() == [1, 0, 0, 1]
