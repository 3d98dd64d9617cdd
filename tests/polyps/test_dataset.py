"""Tests for the training and evaluation Datasets."""

from __future__ import annotations

from pathlib import Path

import albumentations as A
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from ssformer_repro.polyps.augment import build_eval_transform, build_train_transform
from ssformer_repro.polyps.cache import DecodedCache
from ssformer_repro.polyps.settings import AugmentationSettings
from ssformer_repro.polyps.torch_datasets import (
    CachedSegmentationDataset,
    EvaluationDataset,
    ManifestSegmentationDataset,
    collate_evaluation,
    seed_worker,
)

SIZE = 32
FILE_SIZES = {"a": (40, 56), "b": (48, 48), "c": (36, 60), "d": (64, 40), "e": (44, 52)}
SPLITS = {"a": "train", "b": "train", "c": "train", "d": "test", "e": "test"}


def write_sample(folder: Path, sample_id: str, height: int, width: int) -> tuple[str, str]:
    """Write a random RGB PNG and a 0/255 PNG mask holding a rectangle; return both paths."""
    rng = np.random.default_rng(sum(map(ord, sample_id)))
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    mask = np.zeros((height, width), dtype=np.uint8)
    mask[height // 4 : height // 2, width // 3 : 3 * width // 4] = 255
    image_path, mask_path = folder / f"{sample_id}.png", folder / f"{sample_id}_mask.png"
    Image.fromarray(image).save(image_path)
    Image.fromarray(mask).save(mask_path)
    return str(image_path), str(mask_path)


@pytest.fixture
def manifest(tmp_path: Path) -> pd.DataFrame:
    rows = []
    for sample_id, (height, width) in FILE_SIZES.items():
        image_path, mask_path = write_sample(tmp_path, sample_id, height, width)
        rows.append((sample_id, image_path, mask_path, SPLITS[sample_id]))
    return pd.DataFrame(rows, columns=["id", "image_path", "mask_path", "split"])


def read_only_cache(folder: Path, n: int = 6, identical: bool = False) -> DecodedCache:
    """A DecodedCache whose arrays are read-only memmaps, as loaded from disk."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, SIZE, SIZE, 3), dtype=np.uint8)
    masks = np.zeros((n, SIZE, SIZE), dtype=np.uint8)
    masks[:, 8:20, 10:26] = 1
    if identical:
        images[:] = images[0]
    for name, array in (("images", images), ("masks", masks)):
        writer = np.memmap(folder / f"{name}.u8", np.uint8, "w+", shape=array.shape)
        writer[:] = array
        writer.flush()
    return DecodedCache(
        ids=[f"s{i}" for i in range(n)],
        images=np.memmap(folder / "images.u8", np.uint8, "r", shape=images.shape),
        masks=np.memmap(folder / "masks.u8", np.uint8, "r", shape=masks.shape),
        splits=["train"] * (n - 2) + ["val"] * 2,
    )


def load_all(dataset, seed: int, batch_size: int = 2) -> list[dict]:
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        num_workers=2,
        worker_init_fn=seed_worker,
        generator=torch.Generator().manual_seed(seed),
    )
    return list(loader)


def test_cached_dataset_over_a_read_only_memmap_in_worker_processes(tmp_path):
    cache = read_only_cache(tmp_path)
    dataset = CachedSegmentationDataset.from_cache(
        cache, build_train_transform(AugmentationSettings(image_size=SIZE), seed=0), split="train"
    )

    batches = load_all(dataset, seed=0)

    assert len(dataset) == 4
    assert [sample_id for batch in batches for sample_id in batch["id"]] == ["s0", "s1", "s2", "s3"]
    for batch in batches:
        assert batch["image"].shape == (2, 3, SIZE, SIZE) and batch["image"].dtype == torch.float32
        assert batch["mask"].shape == (2, 1, SIZE, SIZE) and batch["mask"].dtype == torch.float32
        assert set(batch["mask"].unique().tolist()) <= {0.0, 1.0}


def test_workers_draw_different_but_reproducible_augmentations(tmp_path):
    cache = read_only_cache(tmp_path, n=4, identical=True)
    dataset = CachedSegmentationDataset.from_cache(
        cache, build_train_transform(AugmentationSettings(image_size=SIZE))
    )

    first = [batch["image"] for batch in load_all(dataset, seed=5, batch_size=1)]
    again = [batch["image"] for batch in load_all(dataset, seed=5, batch_size=1)]

    # Samples 0 and 1 are the first draws of workers 0 and 1 on the same image.
    assert not torch.equal(first[0], first[1])
    for image_a, image_b in zip(first, again, strict=True):
        assert torch.equal(image_a, image_b)


def test_cached_dataset_rejects_a_non_binary_mask():
    images = np.zeros((1, SIZE, SIZE, 3), dtype=np.uint8)
    masks = np.full((1, SIZE, SIZE), 255, dtype=np.uint8)
    dataset = CachedSegmentationDataset(images, masks, ["x7"], build_train_transform())
    with pytest.raises(ValueError, match="'x7'.*0/1"):
        dataset[0]


def test_cached_dataset_rejects_mismatched_arrays():
    images = np.zeros((2, SIZE, SIZE, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="masks must have shape"):
        CachedSegmentationDataset(images, np.zeros((2, 8, 8), np.uint8), ["a", "b"], None)
    with pytest.raises(ValueError, match="2 images"):
        CachedSegmentationDataset(images, np.zeros((2, SIZE, SIZE), np.uint8), ["a"], None)


def test_transform_without_to_tensor_is_reported():
    images = np.zeros((1, SIZE, SIZE, 3), dtype=np.uint8)
    masks = np.zeros((1, SIZE, SIZE), dtype=np.uint8)
    dataset = CachedSegmentationDataset(images, masks, ["a"], A.Compose([A.HorizontalFlip()]))
    with pytest.raises(TypeError, match="ToTensorV2"):
        dataset[0]


def test_manifest_dataset_decodes_and_augments_one_split(manifest):
    dataset = ManifestSegmentationDataset(
        manifest, "train", build_train_transform(AugmentationSettings(image_size=SIZE), seed=1)
    )

    samples = [dataset[i] for i in range(len(dataset))]

    assert [sample["id"] for sample in samples] == ["a", "b", "c"]
    for sample in samples:
        assert sample["image"].shape == (3, SIZE, SIZE)
        assert sample["mask"].shape == (1, SIZE, SIZE)
        assert set(sample["mask"].unique().tolist()) <= {0.0, 1.0}


def test_manifest_dataset_without_augmentation_keeps_the_mask_region(manifest):
    identity = {
        "image_size": SIZE,
        "scale_crop": {"p": 0.0},
        "flip": {"horizontal_p": 0.0, "vertical_p": 0.0},
        "rotate": {"p": 0.0},
        "enhance": {"p": 0.0},
        "dilation_erosion": {"dilate_p": 0.0, "erode_p": 0.0},
    }
    dataset = ManifestSegmentationDataset(
        manifest, "train", build_train_transform(AugmentationSettings.model_validate(identity))
    )

    mask = dataset[1]["mask"][0].numpy()

    original = Image.open(manifest.loc[1, "mask_path"])
    expected = np.asarray(original.resize((SIZE, SIZE), Image.Resampling.NEAREST)) > 127
    np.testing.assert_array_equal(mask, expected)


def test_manifest_dataset_reports_image_and_mask_of_different_sizes(manifest, tmp_path):
    Image.fromarray(np.zeros((10, 10), dtype=np.uint8)).save(tmp_path / "small_mask.png")
    manifest.loc[0, "mask_path"] = str(tmp_path / "small_mask.png")
    dataset = ManifestSegmentationDataset(manifest, "train", build_train_transform())
    with pytest.raises(ValueError, match="a.png.*small_mask.png"):
        dataset[0]


def test_unknown_split_lists_the_splits_present(manifest):
    with pytest.raises(ValueError, match=r"'val'.*\['test', 'train'\]"):
        ManifestSegmentationDataset(manifest, "val", build_train_transform())


def test_manifest_without_a_required_column_is_rejected(manifest):
    with pytest.raises(ValueError, match="mask_path"):
        EvaluationDataset(manifest.drop(columns="mask_path"), "test", build_eval_transform())


def test_evaluation_dataset_keeps_the_original_mask_size(manifest):
    dataset = EvaluationDataset(
        manifest, "test", build_eval_transform(AugmentationSettings(image_size=SIZE))
    )

    sample = dataset[0]

    assert sample["id"] == "d"
    assert sample["image"].shape == (3, SIZE, SIZE)
    assert sample["size"] == FILE_SIZES["d"]
    assert sample["mask"].shape == FILE_SIZES["d"] and sample["mask"].dtype == torch.bool
    assert sample["mask"].sum() == (64 // 2 - 64 // 4) * (3 * 40 // 4 - 40 // 3)


def test_collate_evaluation_stacks_images_and_lists_masks(manifest):
    dataset = EvaluationDataset(
        manifest, None, build_eval_transform(AugmentationSettings(image_size=SIZE))
    )
    loader = DataLoader(dataset, batch_size=5, collate_fn=collate_evaluation)

    [batch] = list(loader)

    assert batch["image"].shape == (5, 3, SIZE, SIZE)
    assert [tuple(mask.shape) for mask in batch["mask"]] == list(FILE_SIZES.values())
    assert batch["size"] == list(FILE_SIZES.values())
    assert batch["id"] == list(FILE_SIZES)
