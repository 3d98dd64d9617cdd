"""The `compile` training setting: torch.compile of the training forward, off under "auto"."""

from __future__ import annotations

import shutil

import pytest
import torch

from ssformer_repro.training.checkpoint import ChangedSettingsError, load_checkpoint
from ssformer_repro.training.loop import train_segmenter
from ssformer_repro.training.settings import TrainingSettings
from tests.tiny import DiskDataset, tiny_model
from tests.tiny import tiny_config as config


@pytest.fixture
def compile_calls(monkeypatch) -> list:
    """Records the modules passed to torch.compile (which still compiles them)."""
    calls = []
    original = torch.compile

    def recording_compile(model, *args, **kwargs):
        calls.append(model)
        return original(model, *args, **kwargs)

    monkeypatch.setattr(torch, "compile", recording_compile)
    return calls


@pytest.mark.skipif(
    shutil.which("gcc") is None and shutil.which("cc") is None,
    reason="torch.compile's CPU backend (inductor) needs a C compiler",
)
def test_compiled_training_matches_eager_and_keeps_plain_keys(tmp_path, compile_calls):
    disks = DiskDataset()
    eager = train_segmenter(
        tiny_model(batch_norm=False), disks, disks, config(epochs=1), tmp_path / "eager", "e"
    )
    model = tiny_model(batch_norm=False)
    compiled = train_segmenter(
        model, disks, disks, config(epochs=1, compile=True), tmp_path / "compiled", "c"
    )

    assert compile_calls == [model]
    assert compiled.history["train_loss"].item() == pytest.approx(
        eager.history["train_loss"].item(), rel=1e-4
    )
    eager_weights = load_checkpoint(eager.last_checkpoint)["model"]
    compiled_weights = load_checkpoint(compiled.last_checkpoint)["model"]
    assert compiled_weights.keys() == eager_weights.keys()  # no "_orig_mod." prefix
    for name, tensor in compiled_weights.items():
        torch.testing.assert_close(tensor, eager_weights[name], rtol=1e-4, atol=1e-5)


def test_auto_does_not_compile(tmp_path, compile_calls):
    disks = DiskDataset(count=2)
    train_segmenter(tiny_model(), disks, disks, config(epochs=1), tmp_path, "auto")
    assert config().compile == "auto"
    assert compile_calls == []


def test_compile_is_checked_and_compared_on_resume(tmp_path):
    with pytest.raises(ValueError, match="compile"):
        TrainingSettings(epochs=1, batch_size=2, compile="yes")
    disks = DiskDataset(count=2)
    train_segmenter(tiny_model(), disks, disks, config(epochs=1), tmp_path, "run")
    with pytest.raises(ChangedSettingsError, match="training.compile: 'auto' -> False"):
        train_segmenter(tiny_model(), disks, disks, config(epochs=2, compile=False), tmp_path, "r")
