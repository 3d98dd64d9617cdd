"""Export: ONNX with dynamic batch and size checked against PyTorch, MLflow's PyTorch flavour."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from ssformer_repro.evaluation.evaluate import TrainedModel
from ssformer_repro.inference import export
from ssformer_repro.inference.export import ProbabilityModel, check_onnx, export_onnx

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("onnxruntime") is None, reason="needs the export extra"
)


@pytest.fixture(scope="module")
def onnx_file(
    tmp_path_factory: pytest.TempPathFactory, checkpoint: Path
) -> tuple[Path, ProbabilityModel]:
    from tests.inference.conftest import RUN, SETTINGS
    from tests.tiny import run_config

    model = ProbabilityModel(TrainedModel(run_config(RUN, SETTINGS), checkpoint).network)
    return export_onnx(model, 32, tmp_path_factory.mktemp("onnx") / "model.onnx"), model


def test_onnx_runtime_matches_pytorch_at_other_batches_and_sizes(onnx_file) -> None:
    import onnxruntime

    path, model = onnx_file
    rng = np.random.default_rng(0)
    frames = [rng.standard_normal((3, 32, 32)), rng.standard_normal((3, 64, 96))]
    report = check_onnx(model, path, [frame.astype(np.float32) for frame in frames])
    assert report["max_abs_difference"] <= 1e-4 and report["frames"] == 2
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    batch = rng.standard_normal((3, 3, 64, 32)).astype(np.float32)
    (probabilities,) = session.run(None, {"images": batch})
    with torch.inference_mode():
        expected = model(torch.from_numpy(batch)).numpy()
    assert probabilities.shape == (3, 1, 64, 32)
    assert np.abs(probabilities - expected).max() <= 1e-4


def test_an_unfaithful_export_is_refused(onnx_file, monkeypatch: pytest.MonkeyPatch) -> None:
    path, model = onnx_file
    monkeypatch.setattr(export, "TOLERANCE", -1.0)  # every difference, even 0, is too large
    frames = [np.zeros((3, 32, 32), np.float32)]
    with pytest.raises(AssertionError, match="the export is not faithful, do not use it"):
        check_onnx(model, path, frames)


def test_export_without_the_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        export, "find_spec", lambda name: None if name == "onnxruntime" else object()
    )
    with pytest.raises(ModuleNotFoundError, match=r"needs onnxruntime: install the export extra"):
        export.require_export_extra()
