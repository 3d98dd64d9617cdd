"""A last.pt made with other settings or inputs is refused, or moved aside and retrained."""

from __future__ import annotations

import pytest

from ssformer_repro.training.checkpoint import ChangedSettingsError, load_checkpoint
from ssformer_repro.training.loop import train_segmenter
from tests.tiny import DiskDataset, tiny_model
from tests.tiny import tiny_config as config


def inputs(rotate_p: float = 0.5, code: str = "abc") -> dict:
    """A run's inputs besides its training settings, as training.run.run_inputs gives them."""
    return {"augmentation": {"rotate": {"p": rotate_p}}, "code": {"training": code}}


def train(run_dir, run_inputs: dict, **settings):
    disks = DiskDataset()
    return train_segmenter(
        tiny_model(), disks, disks, config(**settings), run_dir, "policy", inputs=run_inputs
    )


def test_other_inputs_are_refused_by_default_naming_each_change(tmp_path) -> None:
    train(tmp_path, inputs(), epochs=1)
    before = (tmp_path / "last.pt").read_bytes()
    with pytest.raises(ChangedSettingsError) as refused:
        train(tmp_path, inputs(rotate_p=0.3, code="def"), epochs=2, lr=0.02)
    message = str(refused.value)
    assert "augmentation.rotate.p: 0.5 -> 0.3" in message
    assert "code.training: 'abc' -> 'def'" in message
    assert "training.lr: 0.01 -> 0.02" in message
    assert "epochs" not in message.split("(")[1].split(")", maxsplit=1)[0]  # epochs may change
    assert (tmp_path / "last.pt").read_bytes() == before


def test_restart_moves_the_old_run_aside_and_trains_from_scratch(tmp_path) -> None:
    train(tmp_path, inputs(), epochs=2)
    old_last = (tmp_path / "last.pt").read_bytes()

    result = train(tmp_path, inputs(code="def"), epochs=1, on_changed_settings="restart")

    assert list(result.history["epoch"]) == [1]
    assert load_checkpoint(tmp_path / "last.pt")["fingerprint"]["code"] == {"training": "def"}
    (superseded,) = (tmp_path / "superseded").iterdir()
    assert (superseded / "last.pt").read_bytes() == old_last
    assert {path.name for path in superseded.iterdir()} == {"last.pt", "best.pt", "history.csv"}


def test_same_inputs_resume_under_restart_when_only_epochs_grow(tmp_path) -> None:
    train(tmp_path, inputs(), epochs=1, on_changed_settings="restart")
    result = train(tmp_path, inputs(), epochs=2, on_changed_settings="restart")
    assert list(result.history["epoch"]) == [1, 2]
    assert not (tmp_path / "superseded").exists()
