"""Wall time of the configured grid on this machine, from the training section's rates.

The grid is the one `kedro run --env <env>` trains (`load_parameters`): the runs of `reproduce`
for `training.epochs` at `augmentation.image_size`; each dataset's training and validation
images come from its split manifest where it exists, else from the published split, else the
dataset is left out. A run costs, every epoch, 3 forward passes per training image and 1 per
validation image, at the achieved FLOP/s measured for its head (or, for a head not measured, the
mean over the measured ones); the grid models' FLOPs are counted on the meta device.
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ssformer_repro.benchmark.common import table
from ssformer_repro.config import loader
from ssformer_repro.grid.runs import parameter_grid
from ssformer_repro.models.sizes import forward_gflops_on_meta
from ssformer_repro.polyps.splits import split_for_fold

logger = logging.getLogger(__name__)

BACKWARD_FACTOR = 3  # forward + backward of a training step cost about 3 forward passes
# (train, val) images of the published splits: Kvasir-SEG and CVC-ClinicDB as the reproduction
# report split them, PraNet's training set (Kvasir + ClinicDB) with a 10 % validation part.
PUBLISHED_SPLITS = {"kvasir": (800, 100), "clinicdb": (490, 61), "pranet": (1305, 145)}


def configured_grid(project: Path, env: str | None) -> dict[str, Any]:
    """The project's grid: its models (backbone, head) with their runs' forward passes, the
    datasets' images, and the datasets left out."""
    logger.info("Grid estimate: reading the grid of %s (env %s).", project, env or "default")
    config = loader.project_config(project, env)
    parameters, data_root = config["parameters"], project / config["globals"]["data_root"]
    epochs, size = parameters["training"]["epochs"], parameters["augmentation"]["image_size"]
    runs = parameter_grid(parameters)  # every seed, and every fold of a k-fold dataset
    splits = {(r.dataset, r.fold): _split_sizes(r.dataset, r.fold, data_root) for r in runs}
    datasets = {dataset: images for (dataset, fold), images in splits.items() if fold in (None, 0)}
    left_out = [name for name, images in datasets.items() if not images]
    if left_out:
        logger.info("Grid estimate: no split manifest, no published split: %s left out.", left_out)
    models: dict[tuple[str, str], dict[str, Any]] = {}
    for run in runs:
        if images := splits[(run.dataset, run.fold)]:
            key = (run.backbone, run.head)
            model = models.setdefault(key, dict(backbone=key[0], head=key[1], runs=0, passes=0))
            model["runs"] += 1
            model["passes"] += epochs * (BACKWARD_FACTOR * images["train"] + images["val"])
    datasets = {name: images for name, images in datasets.items() if images}
    grid = dict(project=str(project), env=env, epochs=epochs, size=size, datasets=datasets)
    return grid | dict(left_out=left_out, models=list(models.values()))


def _split_sizes(dataset: str, fold: int | None, data_root: Path) -> dict[str, Any] | None:
    """A run's train and val images: its manifest's (for a fold, that fold's), else published."""
    manifest = data_root / "05_model_input" / f"{dataset}_split.csv"
    counts = {}
    if manifest.is_file():
        rows = split_for_fold(pd.read_csv(manifest, dtype={"id": str}), fold)
        counts = rows["split"].value_counts()
    if counts.get("train", 0) > 0:
        return dict(train=int(counts["train"]), val=int(counts.get("val", 0)), source=str(manifest))
    train, val = PUBLISHED_SPLITS.get(dataset, (0, 0))
    return dict(train=train, val=val, source="published split") if train else None


def estimate(train_rows: Sequence[Mapping[str, Any]], grid: dict[str, Any]) -> dict[str, Any]:
    """Per measured (loop, mode), the hours of each grid model and in total. Models without
    `forward_gflops` are counted on meta first."""
    models = grid["models"]
    uncounted = [model for model in models if "forward_gflops" not in model]
    logger.info("Grid estimate: counting the GFLOPs of %d models on meta.", len(uncounted))
    heads = sorted({model["head"] for model in uncounted})
    backbones = dict.fromkeys(model["backbone"] for model in uncounted)
    gflops = forward_gflops_on_meta(backbones, heads, grid["size"])
    for model in uncounted:
        model["forward_gflops"] = gflops[(model["backbone"], model["head"])]
    estimates = []
    for loop, mode in dict.fromkeys((row["loop"], row["mode"]) for row in train_rows):
        rates: dict[str, list[float]] = {}
        for row in (row for row in train_rows if (row["loop"], row["mode"]) == (loop, mode)):
            rates.setdefault(row["head"], []).append(row["tflops"] * 1e12)  # FLOP/s
        by_head = {head: statistics.fmean(values) for head, values in rates.items()}
        hours = {}
        for model in models:
            rate = by_head.get(model["head"]) or statistics.fmean(by_head.values())
            flops = model["forward_gflops"] * 1e9 * model["passes"]
            hours[f"{model['backbone']}-{model['head']}"] = flops / rate / 3600
        pflop = sum(model["forward_gflops"] * model["passes"] for model in models) / 1e6
        totals = dict(pflop=pflop, hours=sum(hours.values()), model_hours=hours)
        estimates.append(dict(loop=loop, mode=mode, heads=sorted(by_head), **totals))
    return {"grid": grid, "estimates": estimates}


def markdown(result: dict[str, Any]) -> str:
    """What the grid holds and the estimated hours per loop and mode (per model: in the JSON)."""
    grid = result["grid"]
    datasets = grid["datasets"].items()
    images = ", ".join(f"{name} {n['train']} + {n['val']} ({n['source']})" for name, n in datasets)
    runs = sum(model["runs"] for model in grid["models"])
    text = (
        f"Grid of `{grid['project']}` (env {grid['env'] or 'default'}): {runs} runs of "
        f"{len(grid['models'])} models, {grid['epochs']} epochs at {grid['size']} px; training + "
        f"validation images: {images or 'none known'}. Each model's FLOPs at the TFLOP/s "
        "measured for its head: a rough figure, as FLOP/s does not carry over exactly between "
        "backbones and image sizes. Datasets left out (no split manifest, no published split): "
        f"{', '.join(grid['left_out']) or 'none'}."
    )
    columns = "loop, mode, heads:heads measured, pflop:PFLOP, hours"
    return f"{text}\n\n{table(result['estimates'], columns)}" if grid["models"] else text
