"""`compile: true` against `compile: false` on CUDA (marker `gpu`), in a file of its own: compiling
takes longest, so scripts/gpu_check.sh runs it after the other GPU tests.

Tolerance: the mean training loss of 3 steps (MiT-B0 + SeD, 64 px, bf16 autocast, the CUDA
defaults) within 2e-2 relative: inductor fuses and reorders the bf16 arithmetic.
"""

from __future__ import annotations

import pytest

from ssformer_repro.training.checkpoint import load_checkpoint
from ssformer_repro.training.loop import train_segmenter
from tests.gpu.common import cuda_config, disks, mit_model
from tests.tiny import relative_difference

pytestmark = pytest.mark.gpu

COMPILE_RTOL = 2e-2


def test_compile_matches_eager(tmp_path):
    data = disks(count=12, size=64)  # 3 steps of 4 images
    eager = train_segmenter(
        mit_model(), data, data, cuda_config(epochs=1, compile=False), tmp_path / "eager", "e"
    )
    compiled_model = mit_model()
    compiled = train_segmenter(
        compiled_model, data, data, cuda_config(epochs=1, compile=True), tmp_path / "c", "c"
    )

    losses = compiled.history["train_loss"], eager.history["train_loss"]
    assert relative_difference(*losses) < COMPILE_RTOL
    keys = load_checkpoint(tmp_path / "c" / "last.pt")["model"].keys()
    assert keys == load_checkpoint(tmp_path / "eager" / "last.pt")["model"].keys()
