"""A last.pt made with other settings or inputs is refused, or moved aside and retrained."""

from __future__ import annotations

import json
import os

import pytest

from ssformer_repro.training import checkpoint as checkpoint_module
from ssformer_repro.training.checkpoint import (
    ChangedSettingsError,
    RunRecord,
    load_checkpoint,
    load_resumable,
    trained_epochs,
)
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
    assert {path.name for path in superseded.iterdir()} == {
        "last.pt",
        "last.json",
        "best.pt",
    }


def test_same_inputs_resume_under_restart_when_only_epochs_grow(tmp_path) -> None:
    train(tmp_path, inputs(), epochs=1, on_changed_settings="restart")
    result = train(tmp_path, inputs(), epochs=2, on_changed_settings="restart")
    assert list(result.history["epoch"]) == [1, 2]
    assert not (tmp_path / "superseded").exists()


def test_a_look_at_a_run_s_progress_reads_last_json_not_the_tensors(tmp_path, monkeypatch) -> None:
    train(tmp_path, inputs(), epochs=2)
    last = load_checkpoint(tmp_path / "last.pt")
    summary = json.loads((tmp_path / "last.json").read_text())
    assert summary["epoch"] == last["epoch"] == 2
    assert summary["best_epoch"] == last["best_epoch"]
    assert summary["fingerprint"] == json.loads(json.dumps(last["fingerprint"]))
    assert [row["epoch"] for row in summary["history"]] == [1, 2]

    def no_torch_load(*args, **kwargs):
        raise AssertionError("last.pt was read")

    monkeypatch.setattr(checkpoint_module, "load_checkpoint", no_torch_load)
    assert trained_epochs(tmp_path / "last.pt") == 2
    progress = load_resumable(tmp_path / "last.pt", config(epochs=2), inputs(), progress_only=True)
    assert progress["epoch"] == 2 and "model" not in progress
    with pytest.raises(ChangedSettingsError, match="code.training: 'abc' -> 'def'"):
        load_resumable(
            tmp_path / "last.pt", config(epochs=2), inputs(code="def"), progress_only=True
        )


def test_a_last_json_of_another_last_pt_is_not_believed(tmp_path, monkeypatch) -> None:
    train(tmp_path, inputs(), epochs=1)
    written = (tmp_path / "last.pt").stat()
    os.utime(tmp_path / "last.pt", ns=(written.st_atime_ns, written.st_mtime_ns + 10**9))
    (tmp_path / "last.json").write_text(  # as if it told of a longer run
        (tmp_path / "last.json").read_text().replace('"epoch": 1', '"epoch": 7', 1)
    )
    reads = []
    monkeypatch.setattr(
        checkpoint_module,
        "load_checkpoint",
        lambda path, **kwargs: reads.append(path) or load_checkpoint(path, **kwargs),
    )
    assert trained_epochs(tmp_path / "last.pt") == 1
    assert reads == [tmp_path / "last.pt"]


def test_a_run_folder_is_judged_once_start_resume_done_or_restart(tmp_path, monkeypatch) -> None:
    assert RunRecord.judge(tmp_path, config(epochs=2), inputs()).action == "start"
    train(tmp_path, inputs(), epochs=1)
    assert RunRecord.judge(tmp_path, config(epochs=1), inputs()).action == "done"
    resume = RunRecord.judge(tmp_path, config(epochs=2), inputs())
    assert resume.action == "resume" and resume.progress["epoch"] == 1
    changed = config(epochs=2, on_changed_settings="restart")
    restart = RunRecord.judge(tmp_path, changed, inputs(code="def"))
    assert restart.action == "restart" and "code.training: 'abc' -> 'def'" in restart.reason
    with pytest.raises(ChangedSettingsError):
        RunRecord.judge(tmp_path, config(epochs=2), inputs(code="def"))

    # Training acts on the record it is given: last.pt is not judged again.
    def judged_again(*args, **kwargs):
        raise AssertionError("the run folder was judged twice")

    monkeypatch.setattr(checkpoint_module, "load_resumable", judged_again)
    disks = DiskDataset()
    result = train_segmenter(
        tiny_model(), disks, disks, config(epochs=2), tmp_path, "policy", record=resume
    )
    assert list(result.history["epoch"]) == [1, 2]
