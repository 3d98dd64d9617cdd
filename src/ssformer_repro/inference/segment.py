"""Segment a folder of frames with a trained run: a mask per frame and `predictions.csv`.

Each frame is resized to the run's training size and normalised as in evaluation, and the
probability is resized back to the frame's size and thresholded with evaluation's rule, so a
test image's mask here has the same pixels as its scored prediction. The output folder is named
after the run and the input folder; an existing one is never written over (`on_existing`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from ssformer_repro.evaluation.evaluate import TrainedModel
from ssformer_repro.evaluation.metrics import binarise
from ssformer_repro.evaluation.predict import batch_probabilities
from ssformer_repro.grid.runs import GridRun
from ssformer_repro.inference.frames import FRAME_COLUMNS, FrameDataset, collate_frames, find_frames
from ssformer_repro.polyps.augment import build_eval_transform
from ssformer_repro.polyps.io import read_rgb
from ssformer_repro.storage.atomic import atomic_folder, unused_folder
from ssformer_repro.training.checkpoint import BEST_CHECKPOINT, load_checkpoint

logger = logging.getLogger(__name__)

PREDICTIONS_FILE = "predictions.csv"
PREDICTION_COLUMNS = (
    "id",
    "source",
    "height",
    "width",
    "polyp_fraction",  # predicted polyp pixels / frame pixels
    "largest_component_share",  # the largest connected polyp region / all polyp pixels
    "max_probability",
    "status",
)


def output_folder(root: Path, run_name: str, input_folder: Path, on_existing: str) -> Path:
    """`<root>/<run>/<input folder's name>`, or a new one beside it (storage.unused_folder)."""
    folder = Path(root) / run_name / Path(input_folder).resolve().name
    return unused_folder(folder, on_existing, "predict.on_existing")


def segment_folder(
    model: TrainedModel,
    input_folder: str | Path,
    output: Path,
    *,
    tta: str = "none",
    batch_size: int = 8,
    num_workers: int = 0,
    save_probabilities: bool = False,
    save_overlays: bool = False,
) -> pd.DataFrame:
    """Write `masks/<id>.png` (0/255, the frame's size), optionally `probabilities/<id>.png`
    (8-bit) and `overlays/<id>.png`, and `predictions.csv` into the new folder `output`, which
    appears only when complete. Returns the predictions table."""
    frames = find_frames(input_folder)
    dataset = FrameDataset(frames, build_eval_transform(model.config.augmentation))
    loader = DataLoader(
        dataset, batch_size=batch_size, num_workers=num_workers, collate_fn=collate_frames
    )
    threshold = model.evaluation.threshold
    rows: list[dict] = []
    with (
        atomic_folder(output) as staging,
        tqdm(total=len(dataset), desc=f"segmenting with {model.run.name}", unit="frame") as bar,
    ):
        batches = batch_probabilities(model.network, loader, model.device, model.amp_dtype, tta)
        for batch, probabilities in batches:
            rows += [{**row, **dict.fromkeys(PREDICTION_COLUMNS[2:-1])} for row in batch["skipped"]]
            for index, probability in enumerate(probabilities):
                frame = {key: batch[key][index] for key in FRAME_COLUMNS}
                mask = binarise(torch.from_numpy(probability), threshold).numpy()
                _write_outputs(staging, frame, mask, probability, save_probabilities, save_overlays)
                rows.append({**frame, **mask_statistics(mask, probability)})
            bar.update(len(batch["id"]) + len(batch["skipped"]))
        # Whole-number sizes, empty for skipped files (not floats beside NaN: "103.0").
        sizes = {"height": "Int64", "width": "Int64"}
        table = pd.DataFrame(rows, columns=list(PREDICTION_COLUMNS)).astype(sizes)
        table.to_csv(staging / PREDICTIONS_FILE, index=False)
    skipped = table[table["status"].str.startswith("skipped")]
    if len(skipped):
        logger.warning(
            "%d of %d files were skipped (their reasons are in %s): %s",
            len(skipped),
            len(table),
            output / PREDICTIONS_FILE,
            ", ".join(skipped["source"].head(5)),
        )
    return table


def mask_statistics(mask: np.ndarray, probability: np.ndarray) -> dict[str, float | int]:
    """A mask's size, polyp fraction, largest component's share and the maximum probability."""
    height, width = mask.shape
    polyp = int(mask.sum())
    largest = 0
    if polyp:
        _, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
        largest = int(stats[1:, cv2.CC_STAT_AREA].max())
    return {
        "height": height,
        "width": width,
        "polyp_fraction": polyp / mask.size,
        "largest_component_share": largest / polyp if polyp else float("nan"),
        "max_probability": float(probability.max()),
    }


def _write_outputs(
    folder: Path,
    frame: dict,
    mask: np.ndarray,
    probability: np.ndarray,
    save_probabilities: bool,
    save_overlays: bool,
) -> None:
    _save_png(folder / "masks" / f"{frame['id']}.png", mask.astype(np.uint8) * 255)
    if save_probabilities:
        levels = np.clip(np.rint(probability * 255), 0, 255).astype(np.uint8)
        _save_png(folder / "probabilities" / f"{frame['id']}.png", levels)
    if save_overlays:
        _save_png(
            folder / "overlays" / f"{frame['id']}.png", outline(read_rgb(frame["source"]), mask)
        )


def outline(image: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int] = (0, 255, 0)):
    """The frame with the predicted mask's outline drawn on it."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    thickness = max(1, round(min(mask.shape) / 150))
    return cv2.drawContours(np.ascontiguousarray(image), contours, -1, colour, thickness)


def _save_png(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def resolve_checkpoint(
    run_name: str | None, checkpoint: str | Path | None, run_folder: Path | None
) -> tuple[GridRun, Path]:
    """The run (its backbone and head) and the `best.pt` to segment with: the named run's, or
    the given file's (whose run name says which network it holds)."""
    if bool(run_name) == bool(checkpoint):
        raise ValueError(
            "Set exactly one of predict.run (a run of the grid, e.g. "
            "kvasir.mit_b2.pld.seed42) and predict.checkpoint (a best.pt file); got "
            f"run={run_name!r}, checkpoint={checkpoint!r}."
        )
    if run_name:
        run = GridRun.parse(run_name)
        path = Path(run_folder or "") / BEST_CHECKPOINT
        if run_folder is None or not path.is_file():
            raise FileNotFoundError(
                f"predict.run: run {run_name!r} has no {path}. Train it first (`kedro run "
                f"--pipelines=training --namespaces={run_name}`) or set predict.checkpoint."
            )
        return run, path
    path = Path(checkpoint)
    if not path.is_file():
        raise FileNotFoundError(f"predict.checkpoint: {path} is not a file; give a best.pt.")
    saved = load_checkpoint(path, mmap=True)
    if not isinstance(saved, dict) or "run_name" not in saved or "model" not in saved:
        raise ValueError(
            f"predict.checkpoint: {path} is not a best.pt written by this project's training "
            "(it has no run name and model weights)."
        )
    return GridRun.parse(saved["run_name"]), path
