"""A figure of augmented training samples, to check by eye that images and masks stay aligned."""

from __future__ import annotations

import copy

import albumentations as A
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ssformer_repro.polyps.augment import seed_transform
from ssformer_repro.polyps.torch_datasets import (
    CachedSegmentationDataset,
    ManifestSegmentationDataset,
)

MASK_COLOUR = (0.0, 1.0, 0.3)
MASK_ALPHA = 0.35
CONTOUR_COLOUR = "yellow"
PANEL_INCHES = 2.2


def plot_augmented_samples(
    dataset: CachedSegmentationDataset | ManifestSegmentationDataset,
    n_samples: int = 8,
    n_augmentations: int = 3,
    seed: int = 0,
) -> Figure:
    """Grid of ``n_augmentations`` augmented draws (columns) of ``n_samples`` samples (rows).

    Each panel shows the de-normalised image with the mask as a translucent fill and a contour.
    The dataset itself is left untouched: the draws come from a copy of its transform seeded
    with ``seed``.
    """
    if n_samples < 1 or n_augmentations < 1:
        raise ValueError(
            f"n_samples and n_augmentations must be >= 1, got {n_samples} and {n_augmentations}."
        )
    preview_dataset = copy.copy(dataset)
    preview_dataset.transform = copy.deepcopy(dataset.transform)
    seed_transform(preview_dataset.transform, seed)
    mean, std = _normalisation(preview_dataset.transform)

    n_rows = min(n_samples, len(dataset))
    chosen = np.sort(np.random.default_rng(seed).choice(len(dataset), n_rows, replace=False))
    figure = Figure(figsize=(PANEL_INCHES * n_augmentations, PANEL_INCHES * n_rows))
    axes = figure.subplots(n_rows, n_augmentations, squeeze=False)
    for row, index in enumerate(chosen):
        for column in range(n_augmentations):
            sample = preview_dataset[int(index)]
            _draw_panel(axes[row, column], _to_rgb(sample["image"], mean, std), sample["mask"])
        axes[row, 0].set_title(sample["id"], fontsize=8, loc="left")
    figure.tight_layout()
    return figure


def _normalisation(transform: A.Compose) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std (0..1 pixel scale) of the transform's Normalize step."""
    for step in transform.transforms:
        if isinstance(step, A.Normalize):
            return np.asarray(step.mean, dtype=np.float32), np.asarray(step.std, dtype=np.float32)
    raise ValueError("The dataset's transform has no A.Normalize step to undo for display.")


def _to_rgb(image: torch.Tensor, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Undo the normalisation of a (3, H, W) tensor: an (H, W, 3) float image in [0, 1]."""
    pixels = image.permute(1, 2, 0).numpy() * std + mean
    return np.clip(pixels, 0.0, 1.0)


def _draw_panel(axis: Axes, rgb: np.ndarray, mask: torch.Tensor) -> None:
    binary = mask.squeeze(0).numpy() > 0.5
    overlay = np.zeros((*binary.shape, 4), dtype=np.float32)
    overlay[binary] = (*MASK_COLOUR, MASK_ALPHA)
    axis.imshow(rgb)
    axis.imshow(overlay)
    if 0 < binary.sum() < binary.size:
        axis.contour(binary, levels=[0.5], colors=CONTOUR_COLOUR, linewidths=0.8)
    axis.set_axis_off()
