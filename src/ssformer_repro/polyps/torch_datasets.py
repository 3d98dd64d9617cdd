"""Torch Datasets for training (from the decoded cache or from files) and for evaluation."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import albumentations as A
import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset, get_worker_info

from ssformer_repro.polyps.augment import seed_transform
from ssformer_repro.polyps.io import read_mask, read_rgb

if TYPE_CHECKING:
    from ssformer_repro.polyps.cache import DecodedCache

MANIFEST_COLUMNS = ("id", "image_path", "mask_path", "split")


def seed_worker(worker_id: int) -> None:
    """Seed Python's and numpy's global RNGs in a DataLoader worker from torch.initial_seed().

    The datasets below reseed their own augmentation stream per worker; this covers any other
    code in the worker that draws from the global RNGs (use as ``worker_init_fn``).
    """
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)


class _AugmentedDataset(Dataset):
    """Shared logic: run the albumentations transform, reseeding it once per DataLoader worker.

    Forked workers inherit identical copies of the transform's random state, so without the
    reseed every worker would produce the same augmentations. The worker seed comes from the
    DataLoader (its ``generator`` or torch's global seed), so runs stay reproducible.
    """

    def __init__(self, transform: A.Compose):
        self.transform = transform
        self._worker_seed: int | None = None

    def _augment(self, image: np.ndarray, mask: np.ndarray, sample_id: str) -> dict[str, Any]:
        worker = get_worker_info()
        if worker is not None and worker.seed != self._worker_seed:
            seed_transform(self.transform, worker.seed)
            self._worker_seed = worker.seed
        _check_binary_mask(mask, sample_id)
        augmented = self.transform(image=image, mask=mask)
        return {
            "image": _image_tensor(augmented["image"], sample_id),
            "mask": torch.as_tensor(augmented["mask"], dtype=torch.float32).unsqueeze(0),
            "id": sample_id,
        }


class CachedSegmentationDataset(_AugmentedDataset):
    """Training samples from decoded (N, S, S, 3) images and (N, S, S) 0/1 masks, augmented.

    The arrays may be read-only memmaps: each sample is copied before it is transformed.
    """

    def __init__(
        self, images: np.ndarray, masks: np.ndarray, ids: Sequence[str], transform: A.Compose
    ):
        super().__init__(transform)
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"images must have shape (N, H, W, 3), got {images.shape}.")
        if masks.shape != images.shape[:3]:
            raise ValueError(
                f"masks must have shape (N, H, W) = {images.shape[:3]}, got {masks.shape}."
            )
        if len(ids) != len(images):
            raise ValueError(f"Got {len(ids)} ids for {len(images)} images.")
        self.images = images
        self.masks = masks
        self.ids = list(ids)

    @classmethod
    def from_cache(
        cls, cache: DecodedCache, transform: A.Compose, split: str | None = None
    ) -> CachedSegmentationDataset:
        """Dataset over the rows of ``cache`` in ``split`` (all rows when None)."""
        rows = cache if split is None else cache.subset(split)
        return cls(rows.images, rows.masks, rows.ids, transform)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> dict[str, Any]:
        image = np.array(self.images[index], dtype=np.uint8)
        mask = np.array(self.masks[index], dtype=np.uint8)
        return self._augment(image, mask, self.ids[index])


class ManifestSegmentationDataset(_AugmentedDataset):
    """Training samples decoded from the files of one manifest split on every access (no cache)."""

    def __init__(self, manifest: pd.DataFrame, split: str | None, transform: A.Compose):
        super().__init__(transform)
        self.samples = select_split(manifest, split)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = self.samples.iloc[index]
        image, mask = _read_pair(sample)
        return self._augment(image, mask.astype(np.uint8), str(sample["id"]))


class EvaluationDataset(Dataset):
    """Test samples of one manifest split: the resized, normalised image and the original mask."""

    def __init__(self, manifest: pd.DataFrame, split: str | None, transform: A.Compose):
        self.samples = select_split(manifest, split)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = self.samples.iloc[index]
        sample_id = str(sample["id"])
        image, mask = _read_pair(sample)
        return {
            "image": _image_tensor(self.transform(image=image)["image"], sample_id),
            "mask": torch.from_numpy(mask),
            "id": sample_id,
            "size": mask.shape,
        }


def collate_evaluation(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack the images of a batch; keep masks, ids and sizes as lists (masks differ in size)."""
    return {
        "image": torch.stack([sample["image"] for sample in batch]),
        "mask": [sample["mask"] for sample in batch],
        "id": [sample["id"] for sample in batch],
        "size": [sample["size"] for sample in batch],
    }


def select_split(manifest: pd.DataFrame, split: str | None) -> pd.DataFrame:
    """Rows of ``manifest`` in ``split`` (all rows when None), checked and re-indexed."""
    missing = [column for column in MANIFEST_COLUMNS if column not in manifest.columns]
    if missing:
        raise ValueError(
            f"Manifest lacks column(s) {missing}; expected columns {list(MANIFEST_COLUMNS)}."
        )
    rows = manifest if split is None else manifest[manifest["split"] == split]
    if rows.empty:
        raise ValueError(
            f"Manifest has no rows in split {split!r}; "
            f"splits present: {sorted(manifest['split'].unique())}."
        )
    return rows.reset_index(drop=True)


def _read_pair(sample: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Decode one manifest row as an (H, W, 3) uint8 image and an (H, W) bool mask."""
    image = read_rgb(sample["image_path"])
    mask = read_mask(sample["mask_path"])
    if image.shape[:2] != mask.shape:
        raise ValueError(
            f"{sample['image_path']} is {image.shape[:2]} but its mask {sample['mask_path']} "
            f"is {mask.shape}: image and mask must have the same height and width."
        )
    return image, mask


def _check_binary_mask(mask: np.ndarray, sample_id: str) -> None:
    if mask.size and mask.max() > 1:
        raise ValueError(
            f"Mask of sample {sample_id!r} has values up to {mask.max()}; masks must be 0/1. "
            "Rebuild the decoded cache (masks are binarised when decoded)."
        )


def _image_tensor(image: Any, sample_id: str) -> torch.Tensor:
    if not isinstance(image, torch.Tensor):
        raise TypeError(
            f"The transform returned a {type(image).__name__} image for sample {sample_id!r}; "
            "it must end with ToTensorV2 (see build_train_transform / build_eval_transform)."
        )
    return image
