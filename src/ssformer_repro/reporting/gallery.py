"""The test images on which two heads' boundaries differ most, both outlines on the frame.

Where the verdict says "a head is better in NSD", a reader wants to see what that looks like:
for each dataset, the first comparison of heads the grid has (PLD vs SeD where both are
trained), the test images with the largest difference in NSD between the heads (averaged over
their seeds), drawn with the ground truth's outline and each head's predicted outline from one
training each (the first seed; for k-fold, the fold that tested the image).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from torch.utils.data import Subset

from ssformer_repro.evaluation.figures import figure_png
from ssformer_repro.grid.runs import GridRun
from ssformer_repro.polyps.io import read_rgb
from ssformer_repro.polyps.splits import split_for_fold
from ssformer_repro.reporting.names import COMPARISONS, HEAD_NAMES
from ssformer_repro.storage.digests import path_digest, result_code_digests
from ssformer_repro.storage.records import store_record, stored_record

OUTLINES = {"ground truth": "white", "A": "lime", "B": "magenta"}


def differing_images(image_scores: pd.DataFrame, first: str, second: str, n: int) -> pd.DataFrame:
    """The `n` test images of one dataset and backbone with the largest |NSD difference|
    between two heads, mean over seeds: id, test_set, fold, nsd_A, nsd_B, difference."""
    key = ["test_set", "id"]
    means = {
        head: image_scores[image_scores["head"] == head].groupby(key)["nsd"].mean()
        for head in (first, second)
    }
    frame = pd.DataFrame({"nsd_A": means[first], "nsd_B": means[second]}).dropna()
    frame["difference"] = frame["nsd_A"] - frame["nsd_B"]
    # a fold read back from CSV is "" where the dataset has none
    folds = (
        pd.to_numeric(image_scores["fold"], errors="coerce")
        .groupby([image_scores[k] for k in key])
        .first()
    )
    frame["fold"] = folds.reindex(frame.index).to_numpy()
    frame = frame.assign(size=frame["difference"].abs()).reset_index()
    return frame.sort_values(["size", "id"], ascending=[False, True]).head(n)


def plot_nsd_gallery(
    image_scores: pd.DataFrame,
    manifests: Mapping[str, pd.DataFrame],
    checkpoints: Mapping[str, str | Path],
    trained_model: Callable[[GridRun, str | Path], Any],
    n_images: int = 4,
    record: Path | None = None,
) -> bytes:
    """One row per dataset: the `n_images` test images where the first compared pair of heads
    differs most in NSD, with both heads' outlines (see the module doc), as PNG bytes.

    `checkpoints` maps run names to their best.pt; `trained_model(run, checkpoint)` loads one
    (evaluation's `TrainedModel` with the run's settings). With `record`, the figure is kept
    beside it with what it was drawn from (the images chosen and the checkpoints' contents),
    and drawing the same again reads it.
    """
    rows = []
    for dataset, of_dataset in image_scores.groupby("dataset", sort=True):
        heads = set(of_dataset["head"])
        pair = next(((a, b) for a, b in COMPARISONS if {a, b} <= heads), None)
        if pair is None or "nsd" not in of_dataset:
            continue
        backbone = of_dataset["backbone"].iloc[0]
        of_backbone = of_dataset[of_dataset["backbone"] == backbone]
        seed = int(of_backbone["seed"].min())
        chosen = differing_images(of_backbone, *pair, n_images)
        rows.append((dataset, backbone, seed, pair, chosen))
    if not rows:
        raise ValueError("No pair of heads with NSD scores to show in the gallery.")
    key = _key(rows, checkpoints)
    figure_file = record.with_suffix(".png") if record else None
    if record is not None and stored_record(record, key, figure_file) is not None:
        return figure_file.read_bytes()
    png = figure_png(_figure(rows, manifests, checkpoints, trained_model))
    if record is not None:
        store_record(record, {"key": key}, {figure_file: png})
    return png


def _key(rows: list, checkpoints: Mapping[str, str | Path]) -> dict:
    """What the gallery shows: per dataset its runs' checkpoints (contents) and chosen images."""
    key = {"code": result_code_digests()}
    for dataset, backbone, seed, pair, chosen in rows:
        runs = [
            GridRun(dataset, backbone, head, seed, None if pd.isna(fold) else int(fold)).name
            for head in pair
            for fold in chosen["fold"].unique()
        ]
        key[dataset] = {
            "checkpoints": {run: path_digest(checkpoints[run]) for run in sorted(runs)},
            "images": chosen[["id", "nsd_A", "nsd_B"]].round(6).to_dict("list"),
        }
    return key


def _figure(rows: list, manifests, checkpoints, trained_model) -> Figure:  # noqa: ANN001
    """The gallery figure of the chosen images (see `plot_nsd_gallery`)."""
    columns = max(len(chosen) for *_, chosen in rows)
    figure = Figure(figsize=(3.2 * columns, 3.4 * len(rows) + 0.8), layout="constrained")
    axes = figure.subplots(len(rows), columns, squeeze=False)
    for row_axes, (dataset, backbone, seed, (first, second), chosen) in zip(
        axes, rows, strict=True
    ):
        for ax in row_axes:
            ax.set_axis_off()
        for ax, image in zip(row_axes, chosen.itertuples(index=False), strict=False):
            fold = None if pd.isna(image.fold) else int(image.fold)
            manifest = split_for_fold(manifests[dataset], fold)
            masks = {}
            for side, head in (("A", first), ("B", second)):
                run = GridRun(dataset, backbone, head, seed, fold)
                masks[side], frame, truth = _predict(
                    trained_model(run, checkpoints[run.name]), manifest, image.id
                )
            _draw(ax, frame, truth, masks)
            ax.set_title(
                f"{dataset} {image.id}\nNSD A {100 * image.nsd_A:.1f}, B {100 * image.nsd_B:.1f}",
                fontsize="small",
            )
        row_axes[0].text(
            -0.05,
            0.5,
            f"{dataset}, {backbone}\nA: {HEAD_NAMES[first]}\nB: {HEAD_NAMES[second]}\nseed {seed}",
            transform=row_axes[0].transAxes,
            ha="right",
            va="center",
            fontsize="small",
        )
    handles = [
        Line2D([], [], color="grey", linestyle="--", label="ground truth (white, dashed)"),
        Line2D([], [], color=OUTLINES["A"], label="A"),
        Line2D([], [], color=OUTLINES["B"], label="B"),
    ]
    figure.legend(handles=handles, loc="outside lower center", ncols=3, fontsize="small")
    figure.suptitle("Test images where the heads' NSD differs most (mean over seeds)")
    return figure


def _predict(model: Any, manifest: pd.DataFrame, image_id: str):
    """The thresholded prediction, the frame and its mask, of one test image."""
    test_set = model.test_set(manifest)
    rows = test_set.samples
    position = int(np.flatnonzero(rows["id"].astype(str).to_numpy() == str(image_id))[0])
    ((_, probability, truth),) = list(model.predictions(Subset(test_set, [position])))
    threshold = model.evaluation.threshold
    return probability > threshold, read_rgb(rows.iloc[position]["image_path"]), truth


def _draw(ax, frame: np.ndarray, truth: np.ndarray, masks: dict[str, np.ndarray]) -> None:  # noqa: ANN001
    """The frame with the outlines of the ground truth and both predictions."""
    ax.imshow(frame)
    outlines = {"ground truth": truth, "A": masks["A"], "B": masks["B"]}
    for name, mask in outlines.items():
        if mask.any():
            style = "--" if name == "ground truth" else "-"
            ax.contour(mask.astype(float), levels=[0.5], colors=OUTLINES[name], linestyles=style)
