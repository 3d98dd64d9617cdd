"""The NSD gallery: which images it picks, what it draws, and that it draws once per result."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from ssformer_repro.evaluation.settings import EvaluationSettings
from ssformer_repro.reporting import gallery


def scores() -> pd.DataFrame:
    """Two heads, two seeds, five images; image i2 differs most (A far better), then i4."""
    nsd = {"pld": [0.5, 0.6, 0.9, 0.5, 0.2], "sed": [0.5, 0.5, 0.3, 0.5, 0.6]}
    rows = [
        {
            "dataset": "d",
            "backbone": "b",
            "head": head,
            "seed": seed,
            "fold": "",
            "test_set": "d",
            "id": f"i{i}",
            "nsd": value + 0.01 * seed,
        }
        for head, values in nsd.items()
        for seed in (1, 2)
        for i, value in enumerate(values)
    ]
    return pd.DataFrame(rows)


def test_the_images_that_differ_most_come_first() -> None:
    chosen = gallery.differing_images(scores(), "pld", "sed", 2)
    assert list(chosen["id"]) == ["i2", "i4"]
    assert chosen["difference"].tolist() == pytest.approx([0.6, -0.4])
    assert chosen["fold"].isna().all()  # "" read back from CSV: no fold


class FakeModel:
    """Predicts a square for every frame; counts how often it is built."""

    built = 0

    def __init__(self, manifest_root: Path) -> None:
        FakeModel.built += 1
        self.evaluation = EvaluationSettings(threshold=0.5)

    def test_set(self, manifest: pd.DataFrame):
        class Samples(list):
            samples = manifest.reset_index(drop=True)

        return Samples(range(len(manifest)))

    def predictions(self, subset):
        truth = np.zeros((16, 16), bool)
        truth[4:12, 4:12] = True
        return [("x", truth.astype(np.float32) * 0.9, truth)]


def test_the_gallery_is_drawn_once_per_result(tmp_path: Path) -> None:
    frame = tmp_path / "frame.png"
    Image.fromarray(np.full((16, 16, 3), 128, np.uint8)).save(frame)
    manifest = pd.DataFrame({"id": [f"i{i}" for i in range(5)], "image_path": str(frame)})
    checkpoints = {}
    for head in ("pld", "sed"):
        path = tmp_path / f"{head}.pt"
        path.write_bytes(head.encode())
        checkpoints[f"d.b.{head}.seed1"] = path
    record = tmp_path / "nsd_gallery_record.json"
    FakeModel.built = 0

    def draw():
        return gallery.plot_nsd_gallery(
            scores(),
            {"d": manifest},
            checkpoints,
            lambda run, checkpoint: FakeModel(tmp_path),
            n_images=2,
            record=record,
        )

    png = draw()
    assert png.startswith(b"\x89PNG") and FakeModel.built == 4  # 2 images x 2 heads
    assert draw() == png and FakeModel.built == 4  # unchanged: read, no model built
    checkpoints["d.b.sed.seed1"].write_bytes(b"retrained")
    draw()
    assert FakeModel.built == 8  # another checkpoint: drawn again
