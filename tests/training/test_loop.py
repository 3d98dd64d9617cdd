import json
import math

import pandas as pd
import pytest
import torch
from pydantic import ValidationError
from torch import nn

from ssformer_repro.evaluation.metrics import dice_iou
from ssformer_repro.training import device, parts
from ssformer_repro.training.checkpoint import (
    HISTORY_COLUMNS,
    TrainedPastEpochsError,
    load_best_model,
    load_checkpoint,
)
from ssformer_repro.training.device import (
    BF16,
    FP16,
    FP32,
    amp_settings,
    cpu_supports_fp16,
    resolve_device,
)
from ssformer_repro.training.loop import NonFiniteLossError, train_segmenter
from ssformer_repro.training.settings import TrainingSettings
from tests.tiny import DiskDataset, tiny_model
from tests.tiny import tiny_config as config

METRIC_COLUMNS = ["epoch", "lr", "train_loss", "val_mdice", "val_miou"]


def weights(run_dir) -> dict:
    return load_checkpoint(run_dir / "last.pt")["model"]


def assert_same_weights(first: dict, second: dict) -> None:
    assert first.keys() == second.keys()
    for name, tensor in first.items():
        assert torch.equal(tensor, second[name]), name


def test_tiny_model_overfits_four_disks(tmp_path):
    disks = DiskDataset()
    rows = []

    result = train_segmenter(
        tiny_model(), disks, disks, config(epochs=25), tmp_path, "overfit", rows.append
    )

    history = result.history
    assert list(history.columns) == list(HISTORY_COLUMNS)
    assert history["epoch"].tolist() == list(range(1, 26))
    assert history["val_mdice"].iloc[-1] > 0.9
    assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0] / 2
    assert (history["images_per_second"] > 0).all() and (history["epoch_seconds"] > 0).all()
    assert rows == history.to_dict("records")
    saved = json.loads((tmp_path / "last.json").read_text())["history"]
    pd.testing.assert_frame_equal(pd.DataFrame(saved), history, check_dtype=False)
    assert not (tmp_path / "history.csv").exists()  # the catalog writes it, from the node

    assert result.best_epoch == int(history.loc[history["val_mdice"].idxmax(), "epoch"])
    assert result.best_val_mdice == history["val_mdice"].max()
    best = load_checkpoint(result.best_checkpoint)
    assert best["epoch"] == result.best_epoch and best["val_mdice"] == result.best_val_mdice
    assert load_checkpoint(result.last_checkpoint)["epoch"] == 25

    model = load_best_model(tiny_model(seed=9), tmp_path).eval()
    batch = torch.stack(disks.images)
    with torch.no_grad():
        predicted = torch.sigmoid(model(batch)) > 0.5
    dice, _ = dice_iou(predicted, torch.stack(disks.masks) > 0.5)
    assert dice.mean().item() == pytest.approx(result.best_val_mdice, abs=1e-6)


def test_same_seed_gives_identical_runs(tmp_path):
    disks = DiskDataset(augment=True)
    first = train_segmenter(tiny_model(), disks, disks, config(), tmp_path / "a", "a")
    second = train_segmenter(tiny_model(), disks, disks, config(), tmp_path / "b", "b")
    other_seed = train_segmenter(tiny_model(), disks, disks, config(seed=1), tmp_path / "c", "c")

    pd.testing.assert_frame_equal(first.history[METRIC_COLUMNS], second.history[METRIC_COLUMNS])
    assert_same_weights(weights(tmp_path / "a"), weights(tmp_path / "b"))
    assert not first.history["train_loss"].equals(other_seed.history["train_loss"])


def test_resume_equals_an_uninterrupted_run(tmp_path):
    disks = DiskDataset(augment=True)
    schedule = {"name": "warmup_step", "warmup_epochs": 1, "step_size": 2, "gamma": 0.5}
    straight = train_segmenter(
        tiny_model(), disks, disks, config(epochs=4, scheduler=schedule), tmp_path / "straight", "s"
    )

    resumed_dir = tmp_path / "resumed"
    train_segmenter(
        tiny_model(), disks, disks, config(epochs=2, scheduler=schedule), resumed_dir, "r"
    )
    rows = []
    resumed = train_segmenter(
        tiny_model(seed=5),  # different initial weights: they must come from last.pt
        disks,
        disks,
        config(epochs=4, scheduler=schedule),
        resumed_dir,
        "r",
        rows.append,
    )

    assert [row["epoch"] for row in rows] == [3, 4]
    assert straight.history["lr"].tolist() == pytest.approx([0.0, 1e-2, 1e-2, 5e-3])
    pd.testing.assert_frame_equal(straight.history[METRIC_COLUMNS], resumed.history[METRIC_COLUMNS])
    assert (resumed.best_epoch, resumed.best_val_mdice) == (
        straight.best_epoch,
        straight.best_val_mdice,
    )
    assert_same_weights(weights(tmp_path / "straight"), weights(resumed_dir))


def test_fp16_scaler_and_channels_last_path_trains_and_resumes(tmp_path, monkeypatch):
    # The CUDA code path (autocast, GradScaler, channels_last), run on CPU's fp16 autocast.
    monkeypatch.setattr(parts, "amp_settings", lambda device, mode: FP16)
    disks = DiskDataset()
    fp16 = config(channels_last=True)
    straight = train_segmenter(tiny_model(), disks, disks, fp16, tmp_path / "straight", "s")
    train_segmenter(
        tiny_model(), disks, disks, config(epochs=2, channels_last=True), tmp_path / "r", "r"
    )
    resumed = train_segmenter(tiny_model(), disks, disks, fp16, tmp_path / "r", "r")

    assert load_checkpoint(tmp_path / "r" / "last.pt")["grad_scaler"]["scale"] > 0
    assert straight.history["train_loss"].iloc[-1] < straight.history["train_loss"].iloc[0]
    pd.testing.assert_frame_equal(straight.history[METRIC_COLUMNS], resumed.history[METRIC_COLUMNS])


def test_finished_run_returns_its_stored_history(tmp_path):
    disks = DiskDataset()
    first = train_segmenter(tiny_model(), disks, disks, config(epochs=2), tmp_path, "done")
    last_written = (tmp_path / "last.pt").stat().st_mtime_ns
    rows = []

    again = train_segmenter(
        tiny_model(), disks, disks, config(epochs=2), tmp_path, "done", rows.append
    )

    assert rows == []
    assert (tmp_path / "last.pt").stat().st_mtime_ns == last_written
    pd.testing.assert_frame_equal(first.history, again.history)
    assert again.best_epoch == first.best_epoch


def test_changed_config_refuses_to_resume(tmp_path):
    disks = DiskDataset()
    train_segmenter(tiny_model(), disks, disks, config(epochs=1), tmp_path, "run")
    before = (tmp_path / "last.pt").read_bytes()

    with pytest.raises(ValueError, match=r"last\.pt.*lr: 0\.01 -> 0\.001.*delete"):
        train_segmenter(tiny_model(), disks, disks, config(epochs=2, lr=1e-3), tmp_path, "run")
    assert (tmp_path / "last.pt").read_bytes() == before


def test_fewer_epochs_than_last_pt_holds_is_refused_or_restarted(tmp_path):
    disks = DiskDataset()
    train_segmenter(tiny_model(), disks, disks, config(epochs=2), tmp_path, "run")
    before = (tmp_path / "last.pt").read_bytes()

    with pytest.raises(TrainedPastEpochsError, match=r"last\.pt holds 2 epochs, more than "):
        train_segmenter(tiny_model(), disks, disks, config(epochs=1), tmp_path, "run")
    assert (tmp_path / "last.pt").read_bytes() == before

    # Under `restart` the longer run moves aside, as a run of changed settings does.
    restart = config(epochs=1, on_changed_settings="restart")
    result = train_segmenter(tiny_model(), disks, disks, restart, tmp_path, "run")
    assert list(result.history["epoch"]) == [1]
    (superseded,) = (tmp_path / "superseded").iterdir()
    assert (superseded / "last.pt").read_bytes() == before


def test_checkpoint_interval_writes_the_same_files_once_at_the_end(tmp_path):
    disks = DiskDataset(augment=True)
    every_epoch = train_segmenter(tiny_model(), disks, disks, config(epochs=4), tmp_path / "a", "r")
    files_after_epoch = []

    def note_files(row: dict) -> None:
        files_after_epoch.append(sorted(path.name for path in (tmp_path / "b").iterdir()))

    hourly = train_segmenter(
        tiny_model(),
        disks,
        disks,
        config(epochs=4, checkpoint_every_seconds=3600),
        tmp_path / "b",
        "r",
        note_files,
    )

    assert files_after_epoch[:3] == [[], [], []]  # nothing written before the final epoch
    assert files_after_epoch[3] == ["best.pt", "last.json", "last.pt"]
    pd.testing.assert_frame_equal(
        every_epoch.history[METRIC_COLUMNS], hourly.history[METRIC_COLUMNS]
    )
    best_a, best_b = (
        load_checkpoint(tmp_path / "a" / "best.pt"),
        load_checkpoint(tmp_path / "b" / "best.pt"),
    )
    assert best_a["epoch"] == best_b["epoch"] == every_epoch.best_epoch
    assert_same_weights(best_a["model"], best_b["model"])
    assert_same_weights(weights(tmp_path / "a"), weights(tmp_path / "b"))


class BestAfterFirstEpoch(nn.Module):
    """A trained conv whose validation is perfect after epoch 1 and inverted afterwards."""

    def __init__(self, steps_per_epoch: int):
        super().__init__()
        self.conv = nn.Conv2d(3, 1, 3, padding=1)
        self.steps_per_epoch = steps_per_epoch
        self.training_calls = 0

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        logits = self.conv(images)
        if self.training:
            self.training_calls += 1
            return logits
        # The disks are bright: thresholding the image finds them (DiskDataset).
        bright = 100 * (images.mean(1, keepdim=True) - 0.5) + 0 * logits
        return bright if self.training_calls <= self.steps_per_epoch else -bright


def test_best_weights_are_copied_when_recorded_not_when_written(tmp_path):
    disks = DiskDataset()
    model = BestAfterFirstEpoch(steps_per_epoch=2)
    weights_after_epoch = []

    def copy_weights(row: dict) -> None:
        weights_after_epoch.append({k: v.clone() for k, v in model.state_dict().items()})

    result = train_segmenter(
        model,
        disks,
        disks,
        config(epochs=3, checkpoint_every_seconds=3600),
        tmp_path,
        "r",
        copy_weights,
    )

    best = load_checkpoint(tmp_path / "best.pt")
    assert result.best_epoch == best["epoch"] == 1
    assert_same_weights(best["model"], weights_after_epoch[0])
    assert not torch.equal(best["model"]["conv.weight"], weights_after_epoch[2]["conv.weight"])


def test_checkpoint_interval_may_change_on_resume(tmp_path):
    disks = DiskDataset()
    train_segmenter(
        tiny_model(), disks, disks, config(epochs=1, checkpoint_every_seconds=600), tmp_path, "r"
    )

    resumed = train_segmenter(tiny_model(), disks, disks, config(epochs=2), tmp_path, "r")

    assert resumed.history["epoch"].tolist() == [1, 2]


def test_training_runs_on_the_configured_cpu_threads_and_may_resume_on_others(tmp_path):
    disks = DiskDataset()
    before = torch.get_num_threads()
    seen = []
    train_segmenter(
        tiny_model(),
        disks,
        disks,
        config(epochs=1, threads=before + 1),
        tmp_path,
        "r",
        on_epoch_end=lambda row: seen.append(torch.get_num_threads()),
    )
    assert seen == [before + 1] and torch.get_num_threads() == before

    resumed = train_segmenter(tiny_model(), disks, disks, config(epochs=2), tmp_path, "r")

    assert resumed.history["epoch"].tolist() == [1, 2]


class NanAfter(nn.Module):
    """A conv model whose training forward passes return NaN from the `first_bad`-th call on."""

    def __init__(self, first_bad: int):
        super().__init__()
        self.conv = nn.Conv2d(3, 1, 3, padding=1)
        self.first_bad = first_bad
        self.training_calls = 0

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        logits = self.conv(images)
        if self.training:
            self.training_calls += 1
            if self.training_calls >= self.first_bad:
                return logits * math.nan
        return logits


def test_non_finite_loss_stops_with_run_epoch_and_step(tmp_path):
    disks = DiskDataset()
    # 4 images, batch 1: epoch 1 is training calls 1-4, epoch 2 starts with call 5.
    model = NanAfter(first_bad=6)

    with pytest.raises(NonFiniteLossError, match=r"run 'nan-run'.*epoch 2/3.*nan at step 2 of 4"):
        train_segmenter(model, disks, disks, config(batch_size=1), tmp_path, "nan-run")

    kept = load_checkpoint(tmp_path / "last.pt")
    assert kept["epoch"] == 1
    assert all(torch.isfinite(tensor).all() for tensor in kept["model"].values())


def test_validation_every_n_epochs_and_always_at_the_end(tmp_path):
    disks = DiskDataset()

    result = train_segmenter(tiny_model(), disks, disks, config(val_every=2), tmp_path, "sparse")

    validated = result.history["val_mdice"].notna().tolist()
    assert validated == [False, True, True]
    assert result.best_epoch in (2, 3)


def test_worker_processes_run(tmp_path):
    disks = DiskDataset(augment=True)

    result = train_segmenter(
        tiny_model(), disks, disks, config(epochs=2, num_workers=2), tmp_path, "workers"
    )

    assert result.history["epoch"].tolist() == [1, 2]
    assert result.history["train_loss"].notna().all()


def test_empty_validation_set_is_refused(tmp_path):
    with pytest.raises(ValueError, match="val_set is empty"):
        train_segmenter(tiny_model(), DiskDataset(), DiskDataset(count=0), config(), tmp_path, "x")


def test_config_refuses_unknown_keys():
    with pytest.raises(ValidationError, match=r"learning_rate\n.*Extra inputs are not permitted"):
        TrainingSettings.model_validate({"epochs": 2, "batch_size": 4, "learning_rate": 1e-3})


def test_config_from_a_mapping_and_back():
    settings = {"epochs": 2, "batch_size": 4, "scheduler": {"name": "warmup_step"}, "amp": "off"}

    built = TrainingSettings.model_validate(settings)

    assert built.scheduler.step_size == 200  # the chosen schedule's defaults
    assert built.model_dump()["scheduler"] == {
        "name": "warmup_step",
        "warmup_epochs": 1,
        "step_size": 200,
        "gamma": 0.1,
    }
    assert TrainingSettings.model_validate(built.model_dump()) == built
    with pytest.raises(ValidationError, match="batch_size\n  Field required"):
        TrainingSettings.model_validate({"epochs": 2})


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("epochs", 0),
        ("batch_size", -1),
        ("epochs", 2.5),
        ("epochs", True),
        ("lr", "1e-4"),
        ("lr", 0),
        ("weight_decay", -0.1),
        ("val_threshold", 1.0),
        ("num_workers", -1),
        ("amp", "fp8"),
        ("channels_last", "yes"),
        ("scheduler", {"name": "cosine"}),
        ("scheduler", {"name": "warmup_step", "power": 2.0}),
        ("loss", {"bce_weight": 1}),
    ],
)
def test_config_rejects_bad_values(setting, value):
    with pytest.raises(ValidationError, match=rf"\b{setting}\b"):
        TrainingSettings.model_validate({"epochs": 2, "batch_size": 4, setting: value})


def test_device_resolution_on_this_machine():
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    with pytest.raises(ValueError, match="'tpu0' is not a valid torch device"):
        resolve_device("tpu0")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_request_without_cuda_is_a_clear_error():
    with pytest.raises(RuntimeError, match="'cuda:1' was requested but CUDA is not available"):
        resolve_device("cuda:1")


def test_amp_means_the_same_on_the_cpu():
    cpu = torch.device("cpu")

    assert amp_settings(cpu) == (False, torch.float32, False) == FP32  # "auto": fp32 on the CPU
    assert amp_settings(cpu, "off") == FP32
    assert amp_settings(cpu, "bf16") == BF16
    assert amp_settings(cpu, "fp16") == (FP16 if cpu_supports_fp16() else None)
    with pytest.raises(ValueError, match="unknown"):
        amp_settings(cpu, "fp8")


def test_fp16_without_cpu_support_is_one_clear_message(monkeypatch):
    monkeypatch.setattr(device, "cpu_supports_fp16", lambda: False)
    with pytest.raises(
        ValueError, match="'fp16' on the CPU needs float16 autocast.*'bf16' or 'off'"
    ):
        amp_settings(torch.device("cpu"), "fp16")
