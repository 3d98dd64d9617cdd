"""The training and evaluation settings on CUDA (marker `gpu`: skipped where torch sees no GPU).

Run by scripts/gpu_check.sh on the GPU machine (docs/benchmarks.md, "On a GPU"); the CPU side of
the same settings is tests/training/test_device_paths.py. CUDA kernels are not bitwise
reproducible here (cuDNN autotuning, atomics in the backward of bilinear upsampling, TF32
convolutions), so runs are compared within tolerances, stated per test:
- resume after epoch 1 against 2 epochs in one go: per-epoch loss within 2e-2 relative, the
  grad scaler's state identical (it changes only on inf steps and counts steps);
- channels-last + fused AdamW against NCHW + foreach AdamW (fp32 settings; TF32 convolutions
  either way): per-epoch loss within 1e-2 relative;
- evaluation with `amp: bf16` against fp32 on the same images: mean Dice within 0.5 points.
Then the out-of-memory message, from a real failed allocation. `compile` is test_compile.py, the
torchrun NCCL run test_nccl.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ssformer_repro.training.distributed import DistributedContext
from ssformer_repro.training.failures import OutOfMemoryError, explained_resource_errors
from ssformer_repro.training.loop import train_segmenter
from ssformer_repro.training.parts import Placement, RunParts
from tests.gpu.common import channels_last_weights, cuda_config, disks, last, mit_model
from tests.tiny import AllocatesTooMuch, EvaluationDisks, relative_difference, run_config

pytestmark = pytest.mark.gpu

RESUME_RTOL = 2e-2
LAYOUT_RTOL = 1e-2
DICE_POINTS = 0.5


def test_auto_settings_take_the_gpu_paths():
    config = cuda_config()
    placement = Placement.for_config(config, DistributedContext())
    parts = RunParts.build(mit_model(), config, placement)

    expected = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    assert placement.device.type == "cuda" and placement.amp.dtype == expected
    assert placement.memory_format == torch.channels_last
    assert parts.optimizer.param_groups[0]["fused"] is True
    assert parts.scaler.is_enabled() == (expected == torch.float16)
    assert set(channels_last_weights(parts.model)) == {True}


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_two_epochs_in_mixed_precision_and_their_resume(tmp_path, amp):
    data = disks()
    straight = train_segmenter(
        mit_model(), data, data, cuda_config(amp=amp), tmp_path / "straight", "s"
    )
    train_segmenter(mit_model(), data, data, cuda_config(epochs=1, amp=amp), tmp_path / "r", "r")
    after_one = last(tmp_path / "r")
    resumed = train_segmenter(
        mit_model(seed=5), data, data, cuda_config(amp=amp), tmp_path / "r", "r"
    )

    for result in (straight, resumed):
        assert result.history["epoch"].tolist() == [1, 2]
        assert all(math.isfinite(loss) for loss in result.history["train_loss"])
        assert all(math.isfinite(dice) for dice in result.history["val_mdice"])
    assert relative_difference(resumed.history["train_loss"], straight.history["train_loss"]) < (
        RESUME_RTOL
    )
    scaler, resumed_scaler = (
        last(tmp_path / "straight")["grad_scaler"],
        last(tmp_path / "r")["grad_scaler"],
    )
    if amp == "fp16":
        assert after_one["grad_scaler"]["scale"] > 0  # saved with epoch 1 ...
        # ... and resumed: a fresh scaler would count its steps (`_growth_tracker`) from 0 again.
        assert resumed_scaler == scaler
        assert (
            resumed.history["skipped_steps"].tolist() == straight.history["skipped_steps"].tolist()
        )
    else:
        assert scaler == resumed_scaler == {}


def test_channels_last_and_fused_adamw_match_the_plain_path(tmp_path):
    data = disks()
    plain_model, fast_model = mit_model(), mit_model()
    plain = train_segmenter(
        plain_model,
        data,
        data,
        cuda_config(amp="off", channels_last=False, fused_optimizer=False),
        tmp_path / "plain",
        "p",
    )
    fast = train_segmenter(
        fast_model,
        data,
        data,
        cuda_config(amp="off", channels_last=True, fused_optimizer=True),
        tmp_path / "fast",
        "f",
    )

    assert set(channels_last_weights(plain_model)) == {False}
    assert set(channels_last_weights(fast_model)) == {True}
    assert last(tmp_path / "plain")["optimizer"]["param_groups"][0]["fused"] is False
    assert last(tmp_path / "fast")["optimizer"]["param_groups"][0]["fused"] is True
    losses, reference = fast.history["train_loss"], plain.history["train_loss"]
    assert relative_difference(losses, reference) < LAYOUT_RTOL


def test_evaluation_in_bf16_scores_like_fp32(tmp_path):
    from ssformer_repro.evaluation.evaluate import TrainedModel
    from ssformer_repro.evaluation.predict import evaluate_predictions
    from ssformer_repro.grid.runs import GridRun
    from tests.gpu.common import BACKBONE, HEAD

    data = disks(count=32, size=64)
    config = cuda_config(epochs=15, batch_size=8)
    trained = train_segmenter(mit_model(), data, data, config, tmp_path, "trained")
    assert trained.best_val_mdice > 0.7, "the model did not learn the disks: nothing to compare"
    run = GridRun("disks", BACKBONE, HEAD, 0)
    test_images = EvaluationDisks(count=32, seed=1, size=64)

    def scored(amp: str) -> tuple[float, list[np.ndarray]]:
        evaluation = {
            "amp": amp,
            "device": cuda_config().device,
            "batch_size": 16,
            "num_workers": 0,
        }
        settings = {"evaluation": evaluation, "model": {"pretrained": None}}
        model = TrainedModel(run_config(run, settings), tmp_path / "best.pt")
        assert model.amp_dtype == (torch.bfloat16 if amp == "bf16" else None)
        predictions = list(model.predictions(test_images))
        per_image, _ = evaluate_predictions(predictions, threshold=0.5)
        return 100 * per_image["dice"].mean(), [probability for _, probability, _ in predictions]

    fp32_dice, fp32_probabilities = scored("off")
    bf16_dice, bf16_probabilities = scored("bf16")

    pairs = zip(fp32_probabilities, bf16_probabilities, strict=True)
    assert not all(np.array_equal(a, b) for a, b in pairs)  # bf16 did run
    assert abs(bf16_dice - fp32_dice) <= DICE_POINTS, (fp32_dice, bf16_dice)


def twice_the_card(images: torch.Tensor) -> int:
    """Twice the GPU's memory: cudaMalloc fails at once (no managed memory)."""
    return 2 * torch.cuda.get_device_properties(images.device).total_memory


def test_out_of_gpu_memory_names_the_batch_setting(tmp_path):
    data = disks(count=8)  # 2 steps per epoch: epoch 2 runs out
    config = cuda_config(batch_size=4)
    run = "synth_kvasir.mit_b0.sed.seed42"

    with pytest.raises(OutOfMemoryError) as raised:
        with explained_resource_errors(run, config.batch_size):
            train_segmenter(
                AllocatesTooMuch(mit_model(), 3, twice_the_card), data, data, config, tmp_path, run
            )
    torch.cuda.empty_cache()

    message = str(raised.value)
    assert isinstance(raised.value.__cause__, torch.OutOfMemoryError)
    assert message.startswith(f"run '{run}': out of GPU memory at training.batch_size 4")
    assert "Try training.batch_size: 2 for this run" in message
    assert f"{{{run}: {{training: {{batch_size: 2}}}}}}" in message
    assert last(tmp_path)["epoch"] == 1  # a re-run resumes
