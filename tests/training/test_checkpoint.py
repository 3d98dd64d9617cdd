import random
from collections import OrderedDict

import numpy as np
import pytest
import torch

from ssformer_repro.training import checkpoint as checkpoint_module
from ssformer_repro.training.checkpoint import (
    CheckpointError,
    capture_rng_state,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
)


def _state(value: float) -> dict:
    model = torch.nn.Conv2d(3, 2, 3)
    torch.nn.init.constant_(model.weight, value)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model(torch.ones(1, 3, 4, 4)).sum().backward()
    optimizer.step()
    return {
        "epoch": 3,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "best_val_mdice": float("-inf"),
        "history": [{"epoch": 1, "val_mdice": float("nan")}],
        "config": {"scheduler": {"name": "poly", "power": 1.0}, "channels_last": "auto"},
        "rng": capture_rng_state(),
    }


def _temporary_files(folder):
    return [path.name for path in folder.iterdir() if path.name.endswith(".tmp")]


def test_round_trip_with_weights_only(tmp_path):
    state = _state(0.5)
    path = tmp_path / "run" / "last.pt"

    save_checkpoint(state, path)
    loaded = load_checkpoint(path)

    assert loaded["epoch"] == 3
    assert isinstance(loaded["model"], OrderedDict)
    for name, tensor in state["model"].items():
        assert torch.equal(loaded["model"][name], tensor)
    assert loaded["optimizer"]["param_groups"] == state["optimizer"]["param_groups"]
    assert loaded["config"] == state["config"]
    assert loaded["best_val_mdice"] == float("-inf")
    assert _temporary_files(path.parent) == []


def test_loading_refuses_arbitrary_objects(tmp_path):
    path = tmp_path / "unsafe.pt"
    torch.save({"object": random.Random(0)}, path)  # needs full unpickling

    with pytest.raises(CheckpointError, match="unsafe.pt"):
        load_checkpoint(path)


def test_failed_save_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    previous = _state(1.0)
    save_checkpoint(previous, path)

    def write_half_then_fail(obj, file):
        file.write(b"PK\x03\x04 partial checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint_module.torch, "save", write_half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(_state(2.0), path)
    monkeypatch.undo()

    kept = load_checkpoint(path)
    assert torch.equal(kept["model"]["weight"], previous["model"]["weight"])
    assert _temporary_files(tmp_path) == []


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupt_file_raises_a_clear_error(tmp_path, damage):
    path = tmp_path / "last.pt"
    save_checkpoint(_state(1.0), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"not a checkpoint")

    with pytest.raises(CheckpointError, match=r"last\.pt.*(corrupt|truncated)"):
        load_checkpoint(path)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.pt"):
        load_checkpoint(tmp_path / "nothing.pt")


def _draws() -> tuple:
    return (
        [random.random() for _ in range(3)],
        np.random.rand(3).tolist(),
        np.random.randn(1).tolist(),  # exercises numpy's cached Gaussian
        torch.rand(3).tolist(),
    )


def test_rng_state_survives_a_checkpoint(tmp_path):
    random.seed(1)
    np.random.seed(1)
    torch.manual_seed(1)
    np.random.randn(1)  # leave a cached Gaussian in numpy's state
    path = tmp_path / "rng.pt"
    save_checkpoint({"rng": capture_rng_state()}, path)
    expected = _draws()

    _draws()  # move every generator on
    restore_rng_state(load_checkpoint(path)["rng"])

    assert _draws() == expected
