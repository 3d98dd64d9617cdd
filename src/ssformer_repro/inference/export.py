"""Export a run's best checkpoint: ONNX (checked with ONNX Runtime) and MLflow's PyTorch flavour.

Both hold `ProbabilityModel`, the network followed by the sigmoid: it maps a normalised
(B, 3, H, W) float32 batch to (B, 1, H, W) polyp probabilities, H and W multiples of 32 (the
backbone's output stride). onnx and onnxruntime come with the `export` extra
(`pip install -e ".[export]"`).
"""

from __future__ import annotations

import json
import logging
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from ssformer_repro.grid.run_config import RunConfig
from ssformer_repro.inference.settings import ExportSettings
from ssformer_repro.polyps.splits import split_for_fold
from ssformer_repro.storage.atomic import atomic_folder, unused_folder

if TYPE_CHECKING:
    from ssformer_repro.evaluation.evaluate import TrainedModel

logger = logging.getLogger(__name__)

STRIDE = 32  # the backbones' output stride: ONNX's height and width are multiples of it
ONNX_FILE = "model.onnx"
EXPORT_REPORT = "export.json"
TOLERANCE = 1e-4  # largest absolute difference of the probabilities, ONNX Runtime vs PyTorch
OPSET = 18


class ProbabilityModel(nn.Module):
    """A segmenter followed by the sigmoid: normalised images in, polyp probabilities out."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.network(images))


def require_export_extra() -> None:
    """Fail with the install command when onnx or onnxruntime is missing."""
    missing = [name for name in ("onnx", "onnxruntime", "onnxscript") if find_spec(name) is None]
    if missing:
        raise ModuleNotFoundError(
            f"Exporting to ONNX needs {', '.join(missing)}: install the export extra with "
            '`pip install -e ".[export]"` (or `bash .ci/setup --test`).'
        )


def export_onnx(model: ProbabilityModel, image_size: int, path: Path) -> Path:
    """Write `model` as ONNX with a dynamic batch and a height and width multiple of 32."""
    require_export_extra()
    model = model.eval().cpu()
    side = max(image_size, 2 * STRIDE)  # torch.export specialises a size of 1 stride
    example = torch.zeros(2, 3, side, side)
    batch = torch.export.Dim("batch", min=1, max=1024)
    height = torch.export.Dim("height_in_strides", min=1, max=128)
    width = torch.export.Dim("width_in_strides", min=1, max=128)
    dynamic = {"images": {0: batch, 2: STRIDE * height, 3: STRIDE * width}}
    program = torch.onnx.export(
        model,
        (example,),
        dynamo=True,
        input_names=["images"],
        output_names=["probabilities"],
        dynamic_shapes=dynamic,
        opset_version=OPSET,
        verbose=False,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    program.save(str(path))
    return path


def check_onnx(model: ProbabilityModel, path: Path, frames: list[np.ndarray]) -> dict[str, Any]:
    """Run `frames` (normalised (3, H, W) arrays) through ONNX Runtime and PyTorch; the largest
    absolute difference of the probabilities, which must be at most TOLERANCE."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    model = model.eval().cpu()
    differences = []
    for frame in frames:
        batch = frame[None].astype(np.float32)
        (onnx_output,) = session.run(None, {"images": batch})
        with torch.inference_mode():
            torch_output = model(torch.from_numpy(batch)).numpy()
        differences.append(float(np.abs(onnx_output - torch_output).max()))
    largest = max(differences)
    report = {
        "frames": len(frames),
        "shapes": [list(frame.shape) for frame in frames],
        "max_abs_difference": largest,
        "tolerance": TOLERANCE,
    }
    if not largest <= TOLERANCE:
        raise AssertionError(
            f"{path}: ONNX Runtime and PyTorch differ by {largest:.2e} (> {TOLERANCE:.0e}) on "
            "the check frames; the export is not faithful, do not use it."
        )
    logger.info(
        "ONNX Runtime matches PyTorch on %d frames: largest |difference| %.2e (tolerance %.0e).",
        len(frames),
        largest,
        TOLERANCE,
    )
    return report


def log_mlflow_model(
    model: ProbabilityModel, example: np.ndarray, run_id: str | None, run_name: str
) -> str:
    """Log `model` in MLflow's PyTorch flavour, with an input example and signature, to the
    run's MLflow child run (or a new run named after it); returns the `runs:/<id>/model` URI."""
    import mlflow
    import mlflow.pytorch
    from mlflow.models import infer_signature

    from ssformer_repro.tracking.runs import run_exists

    model = model.eval().cpu()
    with torch.inference_mode():
        output = model(torch.from_numpy(example)).numpy()
    signature = infer_signature(example, output)
    nested = mlflow.active_run() is not None
    exists = run_id is not None and run_exists(run_id)
    started = (
        mlflow.start_run(run_id=run_id, nested=nested)
        if exists
        else mlflow.start_run(run_name=run_name, nested=nested, tags={"ssformer.run": run_name})
    )
    with started as tracked:
        mlflow.pytorch.log_model(
            model,
            name="model",
            signature=signature,
            input_example=example,
            pip_requirements=[f"torch=={torch.__version__.split('+')[0]}", "numpy"],
        )
        return f"runs:/{tracked.info.run_id}/model"


def export_trained_run(
    config: RunConfig,
    training_summary: dict[str, Any],
    split_manifest: pd.DataFrame,
    output_root: Path,
    export: ExportSettings,
) -> dict[str, Any]:
    """Write `<output_root>/<run>/model.onnx` and `export.json` (the ONNX Runtime check), and
    log the MLflow model to the run's child run when tracking is on; returns the report."""
    from ssformer_repro.evaluation.evaluate import TrainedModel
    from ssformer_repro.tracking.runs import configure_tracking

    require_export_extra()
    run, tracking = config.run, config.tracking
    output = unused_folder(Path(output_root) / run.name, export.on_existing, "export.on_existing")
    on_cpu = config.evaluation.model_copy(update={"device": "cpu", "amp": "off"})
    trained = TrainedModel(
        config.model_copy(update={"evaluation": on_cpu}), training_summary["checkpoint"]
    )
    model = ProbabilityModel(trained.network)
    frames = check_frames(trained, split_manifest, export.check_frames)
    with atomic_folder(output) as staging:
        export_onnx(model, config.augmentation.image_size, staging / ONNX_FILE)
        report = {"run": run.name, "checkpoint": str(training_summary["checkpoint"])}
        report["onnx_check"] = check_onnx(model, staging / ONNX_FILE, frames)
        report["mlflow_model"] = None
        if export.mlflow and tracking.enabled:
            configure_tracking(tracking)
            run_id = training_summary.get("mlflow_run_id")
            report["mlflow_model"] = log_mlflow_model(model, frames[0][None], run_id, run.name)
        (staging / EXPORT_REPORT).write_text(json.dumps(report, indent=2) + "\n")
    report["onnx"] = str(output / ONNX_FILE)
    return report


def check_frames(trained: TrainedModel, split_manifest: pd.DataFrame, count: int) -> list:
    """The first `count` test images of the run, as evaluation feeds them, and the first one
    again at another height and width (multiples of 32), to check the dynamic axes."""
    test_set = trained.test_set(split_for_fold(split_manifest, trained.run.fold))
    frames = [test_set[index]["image"] for index in range(min(count, len(test_set)))]
    size = frames[0].shape[-1]
    other = F.interpolate(frames[0][None], size=(size + STRIDE, size + 2 * STRIDE), mode="bilinear")
    return [frame.numpy() for frame in [*frames, other[0]]]
