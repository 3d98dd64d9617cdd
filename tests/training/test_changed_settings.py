"""A last.pt made with other settings or inputs is refused, or moved aside and retrained."""

from __future__ import annotations

import pytest

from ssformer_repro.training.checkpoint import ChangedSettingsError, load_checkpoint
from ssformer_repro.training.loop import train_segmenter
from tests.tiny import DiskDataset, tiny_model
from tests.tiny import tiny_config as config


def train(run_dir, **settings):
    disks = DiskDataset()
    return train_segmenter(tiny_model(), disks, disks, config(**settings), run_dir, "policy")


def test_other_inputs_are_refused_by_default(tmp_path) -> None:
    train(tmp_path, epochs=1, resume_key="inputs-a")
    before = (tmp_path / "last.pt").read_bytes()
    with pytest.raises(ChangedSettingsError, match="resume_key: 'inputs-a' -> 'inputs-b'"):
        train(tmp_path, epochs=2, resume_key="inputs-b")
    assert (tmp_path / "last.pt").read_bytes() == before


def test_restart_moves_the_old_run_aside_and_trains_from_scratch(tmp_path) -> None:
    train(tmp_path, epochs=2, resume_key="inputs-a")
    old_last = (tmp_path / "last.pt").read_bytes()

    result = train(tmp_path, epochs=1, resume_key="inputs-b", on_changed_settings="restart")

    assert list(result.history["epoch"]) == [1]
    assert load_checkpoint(tmp_path / "last.pt")["config"]["resume_key"] == "inputs-b"
    (superseded,) = (tmp_path / "superseded").iterdir()
    assert (superseded / "last.pt").read_bytes() == old_last
    assert {path.name for path in superseded.iterdir()} == {"last.pt", "best.pt", "history.csv"}


def test_same_inputs_resume_under_restart(tmp_path) -> None:
    train(tmp_path, epochs=1, resume_key="inputs-a", on_changed_settings="restart")
    result = train(tmp_path, epochs=2, resume_key="inputs-a", on_changed_settings="restart")
    assert list(result.history["epoch"]) == [1, 2]
    assert not (tmp_path / "superseded").exists()
