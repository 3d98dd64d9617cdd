"""The `predict` and `export` parameter blocks: using a trained run."""

from __future__ import annotations

from typing import Literal

from pydantic import NonNegativeInt, PositiveInt

from ssformer_repro.evaluation.settings import TtaMode
from ssformer_repro.settings_types import Settings


class PredictSettings(Settings):
    """Segmenting a folder of new frames (the predict pipeline)."""

    run: str | None = None  # a run of the grid, e.g. kvasir.mit_b2.pld.seed42
    checkpoint: str | None = None  # or a best.pt file
    input: str | None = None  # the folder of frames
    tta: TtaMode = "none"
    batch_size: PositiveInt = 8
    num_workers: NonNegativeInt = 0
    save_probabilities: bool = False
    save_overlays: bool = True
    on_existing: Literal["refuse", "new"] = "refuse"


class ExportSettings(Settings):
    """Exporting a run to ONNX and MLflow (the export pipeline)."""

    run: str | None = None
    check_frames: PositiveInt = 4  # test images compared between ONNX Runtime and PyTorch
    mlflow: bool = True  # also log the model to the run's MLflow child run
    on_existing: Literal["refuse", "new"] = "refuse"
