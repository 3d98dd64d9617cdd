"""Segmenting a folder: masks at each frame's size, predictions.csv, nothing written over."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from ssformer_repro.evaluation.evaluate import TrainedModel
from ssformer_repro.inference.segment import (
    PREDICTION_COLUMNS,
    mask_statistics,
    output_folder,
    resolve_checkpoint,
    segment_folder,
)
from ssformer_repro.training.checkpoint import CheckpointError
from tests.inference.conftest import RUN, SETTINGS
from tests.inference.test_frames import write_frames
from tests.tiny import run_config


def test_every_frame_gets_a_mask_at_its_size_and_a_row(trained: TrainedModel, tmp_path: Path):
    paths = write_frames(tmp_path / "frames")
    output = tmp_path / "out" / "frames"
    table = segment_folder(
        trained, tmp_path / "frames", output, save_probabilities=True, save_overlays=True
    )
    assert list(table.columns) == list(PREDICTION_COLUMNS)
    written = pd.read_csv(output / "predictions.csv")
    assert len(written) == len(table) == 12
    assert list(written["id"]) == list(table["id"]) and list(written["status"]) == list(
        table["status"]
    )
    read = written[written["status"].str.startswith("ok")]
    skipped = written[written["status"].str.startswith("skipped")]
    assert len(skipped) == 4 and skipped["height"].isna().all()
    # Sizes are whole numbers, "56" not "56.0", even beside skipped files' empty cells.
    sizes = pd.read_csv(output / "predictions.csv", dtype=str)[["height", "width"]]
    assert set(sizes.stack().dropna()) == {"40", "56"}
    for row in read.itertuples():
        mask = np.array(Image.open(output / "masks" / f"{row.id}.png"))
        assert mask.shape == (row.height, row.width) == (40, 56)
        assert set(np.unique(mask)) <= {0, 255}
        assert row.polyp_fraction == pytest.approx((mask == 255).mean())
        assert (output / "probabilities" / f"{row.id}.png").is_file()
        overlay = np.array(Image.open(output / "overlays" / f"{row.id}.png"))
        assert overlay.shape == (40, 56, 3)
    assert not (output / "masks" / "empty.png").exists()
    assert (output / "masks" / "seq1" / "frame_001.png").is_file()  # nested ids keep folders
    assert str(paths["rgb"]) in set(written["source"])


def test_an_earlier_prediction_is_never_written_over(tmp_path: Path) -> None:
    first = output_folder(tmp_path, RUN.name, tmp_path / "frames", "refuse")
    assert first == tmp_path / RUN.name / "frames"
    first.mkdir(parents=True)
    with pytest.raises(FileExistsError, match="predict.on_existing=new"):
        output_folder(tmp_path, RUN.name, tmp_path / "frames", "refuse")
    second = output_folder(tmp_path, RUN.name, tmp_path / "frames", "new")
    assert second.name == "frames-2"
    second.mkdir()
    assert output_folder(tmp_path, RUN.name, tmp_path / "frames", "new").name == "frames-3"


def test_mask_statistics_of_two_blobs() -> None:
    mask = np.zeros((10, 10), bool)
    mask[0:2, 0:2] = True  # 4 pixels
    mask[5:9, 5:9] = True  # 16 pixels
    probability = np.where(mask, 0.9, 0.1).astype(np.float32)
    stats = mask_statistics(mask, probability)
    assert stats["polyp_fraction"] == pytest.approx(0.2)
    assert stats["largest_component_share"] == pytest.approx(0.8)
    assert stats["max_probability"] == pytest.approx(0.9)
    assert math.isnan(
        mask_statistics(np.zeros((4, 4), bool), probability[:4, :4])["largest_component_share"]
    )


def test_the_checkpoint_is_the_runs_or_the_given_file(checkpoint: Path, tmp_path: Path) -> None:
    run, path = resolve_checkpoint(None, checkpoint, None)
    assert (run, path) == (RUN, checkpoint)  # the file's run name says the architecture
    assert resolve_checkpoint(RUN.name, None, checkpoint.parent) == (RUN, checkpoint)
    with pytest.raises(ValueError, match="exactly one of predict.run"):
        resolve_checkpoint(RUN.name, checkpoint, checkpoint.parent)
    with pytest.raises(ValueError, match="exactly one of predict.run"):
        resolve_checkpoint(None, None, None)
    with pytest.raises(FileNotFoundError, match="Train it first"):
        resolve_checkpoint(RUN.name, None, tmp_path)
    other = tmp_path / "weights.pt"
    torch.save({"state": 1}, other)
    with pytest.raises(ValueError, match="not a best.pt written by this project"):
        resolve_checkpoint(None, other, None)


def test_a_checkpoint_of_another_architecture_is_refused(checkpoint: Path) -> None:
    pld = RUN.__class__("synth", "mit_b0", "pld", 1)
    with pytest.raises(CheckpointError, match="does not hold a mit_b0 \\+ pld network"):
        TrainedModel(run_config(pld, SETTINGS), checkpoint)
