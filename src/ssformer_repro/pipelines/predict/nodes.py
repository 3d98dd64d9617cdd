"""Node of the predict pipeline: segment the frames of `predict.input` with one trained run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd


def segment_frames(
    parameters: dict[str, Any], output_root: Path, run_folder: Path | None = None
) -> pd.DataFrame:
    """Masks (and `predictions.csv`) for every frame of `predict.input`, in a new folder, with
    the run `predict.run` (or `predict.checkpoint`) and that run's settings."""
    from ssformer_repro.config.checks import checked_run
    from ssformer_repro.evaluation.evaluate import TrainedModel
    from ssformer_repro.inference.frames import find_frames
    from ssformer_repro.inference.segment import output_folder, resolve_checkpoint, segment_folder
    from ssformer_repro.inference.settings import PredictSettings

    predict = PredictSettings.model_validate(parameters.get("predict") or {})
    # Every request problem (checkpoint, architecture, input, output) fails before any work.
    run, checkpoint = resolve_checkpoint(predict.run, predict.checkpoint, run_folder)
    trained = TrainedModel(checked_run(run, parameters, ("evaluation",), weights=False), checkpoint)
    find_frames(predict.input)
    output = output_folder(output_root, run.name, Path(predict.input), predict.on_existing)
    return segment_folder(
        trained,
        predict.input,
        output,
        tta=predict.tta,
        batch_size=predict.batch_size,
        num_workers=predict.num_workers,
        save_probabilities=predict.save_probabilities,
        save_overlays=predict.save_overlays,
    )
