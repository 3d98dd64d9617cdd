"""Tests for the augmented-sample preview figure."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from PIL import Image

from ssformer_repro.polyps.augment import build_train_transform
from ssformer_repro.polyps.preview import plot_augmented_samples
from ssformer_repro.polyps.settings import AugmentationSettings
from ssformer_repro.polyps.torch_datasets import CachedSegmentationDataset

SIZE = 32


def tiny_dataset(n: int = 5) -> CachedSegmentationDataset:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, SIZE, SIZE, 3), dtype=np.uint8)
    masks = np.zeros((n, SIZE, SIZE), dtype=np.uint8)
    masks[:, 6:20, 8:24] = 1
    ids = [f"sample-{i}" for i in range(n)]
    return CachedSegmentationDataset(
        images, masks, ids, build_train_transform(AugmentationSettings(image_size=SIZE), seed=0)
    )


def test_preview_is_a_grid_of_samples_by_draws_and_saves_to_png(tmp_path):
    figure = plot_augmented_samples(tiny_dataset(), n_samples=3, n_augmentations=2, seed=0)

    assert isinstance(figure, Figure)
    assert len(figure.axes) == 3 * 2
    assert all(axis.images for axis in figure.axes)  # image and mask overlay drawn in every panel
    path = tmp_path / "preview.png"
    figure.savefig(path)
    with Image.open(path) as saved:
        assert saved.format == "PNG" and saved.width > 100 and saved.height > 100


def test_preview_has_at_most_one_row_per_sample():
    figure = plot_augmented_samples(tiny_dataset(n=2), n_samples=8, n_augmentations=3)
    assert len(figure.axes) == 2 * 3


def test_preview_shows_the_de_normalised_image_with_the_mask_overlaid():
    dataset = tiny_dataset(n=1)
    figure = plot_augmented_samples(dataset, n_samples=1, n_augmentations=1, seed=4)

    [axis] = figure.axes
    shown_image, overlay = (image.get_array() for image in axis.images)
    assert shown_image.shape == (SIZE, SIZE, 3)
    assert 0.0 <= shown_image.min() and shown_image.max() <= 1.0
    assert shown_image.std() > 0.1  # random pixels, not a flat de-normalisation error
    foreground = overlay[..., 3] > 0
    assert 0 < foreground.sum() < foreground.size
    assert axis.collections, "the mask contour is drawn"


def test_preview_leaves_the_dataset_transform_untouched():
    dataset = tiny_dataset(n=3)
    reference = tiny_dataset(n=3)

    plot_augmented_samples(dataset, n_samples=3, n_augmentations=2, seed=1)

    assert torch.equal(dataset[0]["image"], reference[0]["image"])


def test_preview_rejects_an_empty_grid():
    with pytest.raises(ValueError, match="n_augmentations"):
        plot_augmented_samples(tiny_dataset(), n_samples=2, n_augmentations=0)
