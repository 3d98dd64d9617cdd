"""The device settings mean the same on the CPU as on a GPU, and are tested here (issue 15).

`training.amp: bf16` autocasts to bfloat16 on the CPU too (`auto` stays fp32 there), `fp16`
autocasts to float16 with the grad scaler where this torch can (else one clear message before
any work), `channels_last` and the fused AdamW run on the CPU, `evaluation.amp: bf16` scores on
the CPU, and DDP over Gloo also trains channels-last. What needs CUDA is in tests/gpu/.

Tolerances, measured on the CI CPU with the models below (4-20 optimiser steps):
- a resumed run equals the uninterrupted one bit for bit (histories, weights, optimiser and
  grad-scaler states), in bf16 and in fp16: on the CPU with no loader workers every step is
  deterministic, so any difference is a resume bug;
- channels-last + fused AdamW against NCHW + foreach AdamW: losses within 1e-4 relative and
  each weight tensor within 1e-4 of its largest entry (measured: 5e-6 and 3.4e-6 after 40
  steps; fp32 sums in another order, nothing else differs);
- bf16 / fp16 autocast against fp32: losses within 2e-2 relative over 3 epochs (measured 2.2e-3
  bf16, 4.6e-4 fp16) and never equal to them (the autocast ran);
- evaluation in bf16 against fp32 on the same images: mean Dice within 0.5 points (the GPU
  check's bound; measured 0 here), the probabilities not equal;
- two Gloo processes against one: as tests/training/test_distributed.py (rtol 1e-5).
"""

from __future__ import annotations

import functools
import json
import logging
import math
import socket
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

from ssformer_repro.config.checks import check_parameters
from ssformer_repro.config.loader import load_parameters
from ssformer_repro.grid.runs import GridRun, grid_runs
from ssformer_repro.training import device, distributed
from ssformer_repro.training.device import cpu_supports_fp16
from ssformer_repro.training.distributed import DistributedContext
from ssformer_repro.training.loop import train_segmenter
from ssformer_repro.training.parts import Placement, RunParts
from ssformer_repro.training.settings import TrainingSettings
from tests.conftest import clean_project
from tests.tiny import (
    CONSTANT_LR,
    DiskDataset,
    EvaluationDisks,
    bn_model,
    channels_last_weights,
    last,
    relative_difference,
    run_config,
    tiny_model,
    torchrun_environment,
)
from tests.tiny import tiny_config as config

METRIC_COLUMNS = ["epoch", "lr", "train_loss", "val_mdice", "val_miou", "skipped_steps"]
AUTOCAST_DTYPES = {"auto": torch.float32, "off": torch.float32, "bf16": torch.bfloat16}
AUTOCAST_DTYPES["fp16"] = torch.float16
LOSS_RTOL = 1e-4  # channels-last + fused AdamW against the plain path
WEIGHT_RTOL = 1e-4  # of each tensor's largest entry
AMP_LOSS_RTOL = 2e-2  # bf16 / fp16 autocast against fp32, 3 epochs
DICE_POINTS = 0.5  # evaluation in bf16 against fp32, in Dice points (0-100)
STRATA = {"small_below": 0.1, "large_from": 0.3}  # polyp-size thresholds (not what is tested)
FP16_UNSUPPORTED = r"amp mode 'fp16' on the CPU needs float16 autocast.*use 'bf16' or 'off'"


def assert_equal_states(first, second, where: str = "") -> None:
    """Nested checkpoint states (dicts, lists, tensors, numbers) equal bit for bit."""
    if isinstance(first, torch.Tensor):
        assert isinstance(second, torch.Tensor) and torch.equal(first, second), where
    elif isinstance(first, dict):
        assert first.keys() == second.keys(), where
        for key in first:
            assert_equal_states(first[key], second[key], f"{where}.{key}")
    elif isinstance(first, list | tuple):
        assert len(first) == len(second), where
        for index, (a, b) in enumerate(zip(first, second, strict=True)):
            assert_equal_states(a, b, f"{where}[{index}]")
    else:
        both_nan = isinstance(first, float) and math.isnan(first) and math.isnan(second)
        assert first == second or both_nan, where


def assert_close_weights(first: dict, second: dict, rtol: float) -> None:
    assert first.keys() == second.keys()
    for name, tensor in first.items():
        if tensor.is_floating_point():
            scale = float(tensor.abs().max()) or 1.0
            torch.testing.assert_close(tensor, second[name], rtol=0, atol=rtol * scale, msg=name)
        else:
            assert torch.equal(tensor, second[name]), name


@pytest.fixture
def high_loss_scale(monkeypatch):
    """Grad scalers that start at 2**20: the tiny model's fp16 gradients overflow at first, so
    the scaler backs off (skipping steps) in epoch 1, as it does when fp16 training starts."""
    monkeypatch.setattr(
        torch.amp, "GradScaler", functools.partial(torch.amp.GradScaler, init_scale=2.0**20)
    )


def record_dtypes(model: nn.Module) -> dict[bool, set[torch.dtype]]:
    """The output dtypes of `model`'s convolutions, by training mode, as forward passes go."""
    seen: dict[bool, set[torch.dtype]] = {True: set(), False: set()}

    def note(module: nn.Module, inputs, output: torch.Tensor) -> None:
        seen[module.training].add(output.dtype)

    for layer in model.modules():
        if isinstance(layer, nn.Conv2d):
            layer.register_forward_hook(note)
    return seen


# --- amp on the CPU ---------------------------------------------------------------------------


@pytest.mark.parametrize("amp", ["auto", "off", "bf16", "fp16"])
def test_amp_setting_is_the_autocast_dtype_of_training_and_validation(tmp_path, amp):
    if amp == "fp16" and not cpu_supports_fp16():
        pytest.skip("this torch has no float16 autocast on the CPU (the error is tested below)")
    model = bn_model()
    dtypes = record_dtypes(model)

    train_segmenter(model, DiskDataset(), DiskDataset(), config(epochs=1, amp=amp), tmp_path, "r")

    expected = AUTOCAST_DTYPES[amp]
    assert dtypes == {True: {expected}, False: {expected}}  # training and validation
    scaler = last(tmp_path)["grad_scaler"]
    if amp == "fp16":
        assert scaler["scale"] == 2.0**16 and scaler["_growth_tracker"] == 2  # 2 scaled steps
    else:
        assert scaler == {}  # no grad scaler: bf16 has fp32's range


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_mixed_precision_trains_close_to_fp32_but_not_equal(tmp_path, amp):
    if amp == "fp16" and not cpu_supports_fp16():
        pytest.skip("this torch has no float16 autocast on the CPU (the error is tested below)")
    disks = DiskDataset(count=8, augment=True)
    fp32 = train_segmenter(bn_model(), disks, disks, config(amp="off"), tmp_path / "fp32", "a")
    mixed = train_segmenter(bn_model(), disks, disks, config(amp=amp), tmp_path / amp, "b")

    losses, reference = mixed.history["train_loss"], fp32.history["train_loss"]
    assert not losses.equals(reference)  # the autocast did run ...
    assert relative_difference(losses, reference) < AMP_LOSS_RTOL  # ... in a close precision
    assert losses.iloc[-1] < losses.iloc[0] / 1.5


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_mixed_precision_run_resumes_from_last_pt_exactly(tmp_path, amp, high_loss_scale):
    disks = DiskDataset(count=8, augment=True)  # 4 steps per epoch, augmentation from the RNGs
    if amp == "fp16" and not cpu_supports_fp16():
        with pytest.raises(ValueError, match=FP16_UNSUPPORTED):
            train_segmenter(bn_model(), disks, disks, config(amp=amp), tmp_path, "r")
        assert list(tmp_path.iterdir()) == []  # refused before any work
        return
    straight = train_segmenter(
        bn_model(), disks, disks, config(epochs=4, amp=amp), tmp_path / "straight", "s"
    )
    train_segmenter(bn_model(), disks, disks, config(epochs=2, amp=amp), tmp_path / "resumed", "r")
    half_way = last(tmp_path / "resumed")
    rows = []
    resumed = train_segmenter(
        bn_model(seed=5),  # other initial weights: they must come from last.pt
        disks,
        disks,
        config(epochs=4, amp=amp),
        tmp_path / "resumed",
        "r",
        rows.append,
    )

    assert [row["epoch"] for row in rows] == [3, 4]
    pd.testing.assert_frame_equal(
        straight.history[METRIC_COLUMNS], resumed.history[METRIC_COLUMNS], check_exact=True
    )
    done, resumed_done = last(tmp_path / "straight"), last(tmp_path / "resumed")
    for part in ("model", "optimizer", "scheduler", "grad_scaler"):
        assert_equal_states(done[part], resumed_done[part], part)
    if amp == "fp16":
        # The scaler backed off in epochs 1-2 and its state went through last.pt: a fresh
        # scaler would start at 2**20 again and skip steps in epoch 3.
        skipped = straight.history["skipped_steps"].tolist()
        assert skipped[0] > 0 and skipped[2:] == [0, 0]
        assert half_way["grad_scaler"]["scale"] < 2.0**20
        assert resumed_done["grad_scaler"]["_growth_tracker"] >= 8  # counted on from last.pt
    else:
        assert done["grad_scaler"] == resumed_done["grad_scaler"] == {}


def test_fp16_the_cpu_cannot_do_is_one_message_before_any_work(tmp_path, monkeypatch):
    monkeypatch.setattr(device, "cpu_supports_fp16", lambda: False)

    with pytest.raises(ValueError, match=FP16_UNSUPPORTED):
        train_segmenter(bn_model(), DiskDataset(), DiskDataset(), config(amp="fp16"), tmp_path, "r")
    assert list(tmp_path.iterdir()) == []

    # The configuration check (before `kedro run` starts any node): one line per block.
    problems = demo_problems(training={"amp": "fp16"}, evaluation={"amp": "fp16", "device": "cpu"})
    assert len(problems) == 2, problems
    training, evaluation = problems
    assert training.startswith("training: amp mode 'fp16' on the CPU needs float16 autocast")
    assert evaluation.startswith("evaluation: amp mode 'fp16' on the CPU needs float16 autocast")
    assert all("use 'bf16' or 'off' on the CPU" in problem for problem in problems)
    assert all("(runs synth_kvasir.mit_b0.pld.seed42, " in problem for problem in problems)


def test_every_cpu_capable_device_setting_passes_the_check():
    cpu_can = {
        "amp": "bf16",
        "channels_last": True,
        "fused_optimizer": True,
        "pin_memory": False,
        "device": "cpu",
    }
    assert demo_problems(training=cpu_can, evaluation={"amp": "bf16", "device": "cpu"}) == []
    fp16_problems = demo_problems(training={"amp": "fp16"})
    assert len(fp16_problems) == (0 if cpu_supports_fp16() else 1)


def demo_problems(**params) -> list[str]:
    """The problems `kedro run --env demo --params ...` reports for the demo's grid (the demo
    trains on the CPU)."""
    parameters = load_parameters(clean_project(), "demo", params)
    runs = grid_runs(parameters["reproduce"])
    return check_parameters(parameters, parameters["data_processing"]["datasets"], runs)


# --- channels-last and the fused AdamW on the CPU ---------------------------------------------


def test_channels_last_and_fused_adamw_match_the_plain_path(tmp_path):
    disks = DiskDataset(count=8, augment=True)
    plain_model, fast_model = bn_model(), bn_model()
    inputs = []
    fast_model[0].register_forward_pre_hook(lambda module, args: inputs.append(args[0]))
    plain = train_segmenter(plain_model, disks, disks, config(epochs=5), tmp_path / "plain", "p")
    fast = train_segmenter(
        fast_model,
        disks,
        disks,
        config(epochs=5, channels_last=True, fused_optimizer=True),
        tmp_path / "fast",
        "f",
    )

    # `auto` is the plain path on the CPU; `true` really is channels-last and fused.
    assert set(channels_last_weights(plain_model)) == {False}
    assert set(channels_last_weights(fast_model)) == {True}
    assert all(image.is_contiguous(memory_format=torch.channels_last) for image in inputs)
    assert last(tmp_path / "plain")["optimizer"]["param_groups"][0]["fused"] is False
    assert last(tmp_path / "fast")["optimizer"]["param_groups"][0]["fused"] is True

    assert relative_difference(fast.history["train_loss"], plain.history["train_loss"]) < LOSS_RTOL
    assert fast.history["train_loss"].iloc[-1] < plain.history["train_loss"].iloc[0] / 2
    assert_close_weights(
        last(tmp_path / "fast")["model"], last(tmp_path / "plain")["model"], WEIGHT_RTOL
    )
    assert fast.history["val_mdice"].iloc[-1] == pytest.approx(
        plain.history["val_mdice"].iloc[-1], abs=1e-3
    )


@pytest.mark.skipif(not cpu_supports_fp16(), reason="this torch has no fp16 autocast on the CPU")
def test_fused_adamw_skips_the_steps_the_fp16_scaler_skips(tmp_path, high_loss_scale):
    # The fused kernel takes the scaler's inf check itself (and undoes its step count): the
    # same steps are skipped as with the foreach AdamW, and the same updates applied.
    disks = DiskDataset(count=8, augment=True)
    plain = train_segmenter(
        bn_model(), disks, disks, config(amp="fp16", fused_optimizer=False), tmp_path / "p", "p"
    )
    fused = train_segmenter(
        bn_model(),
        disks,
        disks,
        config(amp="fp16", fused_optimizer=True, channels_last=True),
        tmp_path / "f",
        "f",
    )

    assert plain.history["skipped_steps"].iloc[0] > 0
    assert fused.history["skipped_steps"].tolist() == plain.history["skipped_steps"].tolist()
    assert relative_difference(fused.history["train_loss"], plain.history["train_loss"]) < LOSS_RTOL
    fused_last, plain_last = last(tmp_path / "f"), last(tmp_path / "p")
    assert fused_last["grad_scaler"] == plain_last["grad_scaler"]
    steps = {float(state["step"]) for state in fused_last["optimizer"]["state"].values()}
    assert steps == {12.0 - plain.history["skipped_steps"].sum()}


# --- evaluation.amp on the CPU ----------------------------------------------------------------


def test_evaluation_amp_bf16_scores_on_the_cpu_like_fp32(tmp_path, monkeypatch):
    from ssformer_repro.evaluation import evaluate
    from ssformer_repro.evaluation.predict import evaluate_predictions

    disks = DiskDataset(count=8)
    trained = train_segmenter(bn_model(), disks, disks, config(epochs=10), tmp_path, "trained")
    assert trained.best_val_mdice > 0.8
    monkeypatch.setattr(evaluate, "build_configured_model", lambda *args, **kwargs: bn_model(9))
    run = GridRun("disks", "mit_b0", "sed", 0)  # the network is bn_model, whatever the names

    def scored(amp: str) -> tuple[evaluate.TrainedModel, float, list[np.ndarray]]:
        evaluation = {"amp": amp, "device": "cpu", "batch_size": 4, "num_workers": 0}
        config = run_config(run, {"evaluation": evaluation, "model": {}})
        model = evaluate.TrainedModel(config, tmp_path / "best.pt")
        predictions = list(model.predictions(EvaluationDisks(count=8, seed=1)))
        per_image, _ = evaluate_predictions(
            predictions, size_strata=STRATA, nsd_tolerance=None, threshold=0.5
        )
        return model, 100 * per_image["dice"].mean(), [p for _, p, _ in predictions]

    fp32, fp32_dice, fp32_probabilities = scored("off")
    auto, auto_dice, _ = scored("auto")
    bf16, bf16_dice, bf16_probabilities = scored("bf16")

    assert fp32.amp_dtype is None and auto.amp_dtype is None  # `auto` is fp32 on the CPU
    assert bf16.amp_dtype == torch.bfloat16
    assert auto_dice == fp32_dice > 80
    assert not all(
        np.array_equal(a, b) for a, b in zip(fp32_probabilities, bf16_probabilities, strict=True)
    )
    assert abs(bf16_dice - fp32_dice) <= DICE_POINTS


# --- DDP over Gloo and SyncBatchNorm, channels-last -------------------------------------------

DDP_SIZE = 16


def ddp_config(epochs: int, **settings) -> TrainingSettings:
    # Global batch 4 of 8 images: two optimiser steps per epoch, each on 2 images per process.
    return TrainingSettings(
        epochs=epochs, batch_size=4, lr=1e-2, scheduler=CONSTANT_LR, device="cpu", **settings
    )


DDP_RUNS = {
    # name: (batch_norm, settings)
    "channels_last": (False, {"channels_last": True, "fused_optimizer": True}),
    "channels_last_bn": (True, {"channels_last": True}),
    "plain_bn": (True, {}),
}


def train_one_rank(rank: int, world_size: int, port: int, root: str) -> None:
    """One torchrun-like process training every run of DDP_RUNS."""
    torchrun_environment(rank, world_size, port)
    dataset = DiskDataset(count=8, size=DDP_SIZE)
    for name, (batch_norm, settings) in DDP_RUNS.items():
        model = bn_model() if batch_norm else tiny_model(batch_norm=False)
        result = train_segmenter(
            model, dataset, dataset, ddp_config(2, **settings), Path(root, name), "ddp"
        )
        layouts = channels_last_weights(model)
        report = {"history": result.history.to_dict("records"), "channels_last": layouts}
        Path(root, name, f"rank{rank}.json").write_text(json.dumps(report))


@pytest.fixture(scope="module")
def gloo_runs(tmp_path_factory) -> Path:
    """The runs of DDP_RUNS, each trained by two Gloo processes (one start-up for all)."""
    root = tmp_path_factory.mktemp("ddp_channels_last")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mp.spawn(train_one_rank, args=(2, port, str(root)), nprocs=2, join=True)
    return root


def rank_report(run_dir: Path, rank: int) -> dict:
    return json.loads((run_dir / f"rank{rank}.json").read_text())


def test_two_gloo_processes_train_channels_last_like_one(gloo_runs, tmp_path):
    dataset = DiskDataset(count=8, size=DDP_SIZE)
    settings = DDP_RUNS["channels_last"][1]
    single = train_segmenter(
        tiny_model(batch_norm=False), dataset, dataset, ddp_config(2, **settings), tmp_path, "one"
    )

    run_dir = gloo_runs / "channels_last"
    for rank in (0, 1):
        report = rank_report(run_dir, rank)
        assert report["channels_last"] == [True, True]
        history = pd.DataFrame(report["history"])[METRIC_COLUMNS]
        pd.testing.assert_frame_equal(history, single.history[METRIC_COLUMNS], rtol=1e-5)
    ddp_weights, single_weights = last(run_dir)["model"], last(tmp_path)["model"]
    for name, tensor in ddp_weights.items():
        torch.testing.assert_close(tensor, single_weights[name], rtol=1e-5, atol=1e-6)
    assert last(run_dir)["optimizer"]["param_groups"][0]["fused"] is True


def test_two_gloo_processes_with_batch_norm_train_channels_last_like_nchw(gloo_runs):
    # BatchNorm under Gloo normalises each process's half batch (no SyncBatchNorm on the CPU),
    # the same in both layouts.
    channels_last, plain = gloo_runs / "channels_last_bn", gloo_runs / "plain_bn"
    assert rank_report(channels_last, 0)["channels_last"] == [True, True]
    assert rank_report(plain, 0)["channels_last"] == [False, False]
    first, second = rank_report(channels_last, 1), rank_report(plain, 1)
    losses = pd.Series([row["train_loss"] for row in first["history"]])
    assert (
        relative_difference(losses, pd.Series([r["train_loss"] for r in second["history"]]))
        < LOSS_RTOL
    )
    assert_close_weights(last(channels_last)["model"], last(plain)["model"], WEIGHT_RTOL)


class RecordingDDP:
    """Stands in for DistributedDataParallel (which needs a process group): keeps its arguments."""

    def __init__(self, module: nn.Module, device_ids=None) -> None:
        self.module, self.device_ids = module, device_ids


def placed(model: nn.Module, **settings) -> nn.Module:
    """`model` moved as the loop moves it (RunParts.build), on the CPU."""
    training = config(**settings)
    RunParts.build(model, training, Placement.for_config(training, DistributedContext()))
    return model


def test_sync_batchnorm_conversion_keeps_channels_last_weights_and_results(monkeypatch, caplog):
    monkeypatch.setattr(distributed, "DistributedDataParallel", RecordingDDP)
    context = DistributedContext(rank=0, world_size=2, local_rank=0)
    images = torch.stack([DiskDataset(count=4)[i]["image"] for i in range(4)])
    images = images.contiguous(memory_format=torch.channels_last)

    # On CUDA the loop converts BatchNorm to SyncBatchNorm before DDP wraps the model.
    original = placed(bn_model(), channels_last=True)
    wrapped = context.wrap_model(placed(bn_model(), channels_last=True), torch.device("cuda", 0))
    converted = wrapped.module
    assert wrapped.device_ids == [0]
    assert [type(layer) for layer in converted if "Norm" in type(layer).__name__] == [
        nn.SyncBatchNorm
    ]
    assert channels_last_weights(converted) == [True, True]
    assert_equal_states(original.state_dict(), converted.state_dict(), "state")
    # Without a process group SyncBatchNorm is BatchNorm: the same step, statistics included.
    for model in (original, converted):
        model.train()
        model(images).sum().backward()
    assert_equal_states(original.state_dict(), converted.state_dict(), "after a step")
    for (name, a), b in zip(original.named_parameters(), converted.parameters(), strict=True):
        assert torch.equal(a.grad, b.grad), name

    # On the CPU (Gloo) BatchNorm stays, with a warning that it normalises per process.
    with caplog.at_level(logging.WARNING):
        on_cpu = context.wrap_model(placed(bn_model(), channels_last=True), torch.device("cpu"))
    assert on_cpu.device_ids is None
    assert any(isinstance(layer, nn.BatchNorm2d) for layer in on_cpu.module)
    assert "SyncBatchNorm needs CUDA" in caplog.text
