"""Decode and resize every frame once, so training epochs read raw arrays instead of JPEG/TIFF."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ssformer_repro.polyps.io import read_mask, read_rgb


@dataclass
class DecodedCache:
    """Frames (N, S, S, 3) uint8 and masks (N, S, S) uint8 in {0, 1}, with each row's id and split.

    Rows are grouped by split, so `subset` of a memory-mapped cache is a view, not a copy.
    """

    ids: list[str]
    images: np.ndarray
    masks: np.ndarray
    splits: list[str]

    def __post_init__(self) -> None:
        lengths = {len(self.ids), len(self.splits), len(self.images), len(self.masks)}
        if len(lengths) != 1:
            raise ValueError(
                f"DecodedCache parts differ in length: {len(self.ids)} ids, {len(self.splits)} "
                f"splits, {len(self.images)} images, {len(self.masks)} masks."
            )
        if self.images.ndim != 4 or self.images.shape[3] != 3 or self.images.dtype != np.uint8:
            raise ValueError(
                f"images must be (N, S, S, 3) uint8, got {self.images.shape} {self.images.dtype}."
            )
        if self.masks.shape != self.images.shape[:3] or self.masks.dtype != np.uint8:
            raise ValueError(
                f"masks must be (N, S, S) uint8 matching images {self.images.shape[:3]}, "
                f"got {self.masks.shape} {self.masks.dtype}."
            )

    def __len__(self) -> int:
        return len(self.ids)

    def select(self, ids: Sequence[str]) -> DecodedCache:
        """The rows of `ids`, in that order; a slice (no copy) when they are contiguous."""
        position = {sample_id: index for index, sample_id in enumerate(self.ids)}
        missing = [sample_id for sample_id in ids if sample_id not in position]
        if missing:
            raise ValueError(
                f"{len(missing)} ids are not in the decoded cache (e.g. {missing[:3]}); rebuild "
                "it from the current split manifest (re-run data_processing)."
            )
        indices = np.array([position[sample_id] for sample_id in ids], dtype=np.int64)
        contiguous = len(indices) > 0 and np.array_equal(
            indices, np.arange(indices[0], indices[0] + len(indices))
        )
        rows = slice(int(indices[0]), int(indices[-1]) + 1) if contiguous else indices
        return DecodedCache(
            ids=list(ids),
            images=self.images[rows],
            masks=self.masks[rows],
            splits=[self.splits[index] for index in indices],
        )

    def subset(self, split: str) -> DecodedCache:
        """The rows of one split; a slice (no copy) when they are contiguous, as built here."""
        indices = np.flatnonzero(np.asarray(self.splits) == split)
        if len(indices) == 0:
            raise ValueError(
                f"No rows with split {split!r}; the cache holds {sorted(set(self.splits))}."
            )
        contiguous = indices[-1] - indices[0] + 1 == len(indices)
        rows = slice(int(indices[0]), int(indices[-1]) + 1) if contiguous else indices
        return DecodedCache(
            ids=[self.ids[index] for index in indices],
            images=self.images[rows],
            masks=self.masks[rows],
            splits=[split] * len(indices),
        )


def build_decoded_cache(
    manifest: pd.DataFrame,
    size: int,
    splits: Sequence[str] = ("train", "val"),
    mask_threshold: int = 127,
    progress: bool = False,
) -> DecodedCache:
    """Read the manifest rows of `splits`, resized to `size` x `size` (bilinear), grouped by split.

    Masks are binarised at `mask_threshold`, resized bilinearly as 0/255 and binarised again
    at 127, so the resized mask keeps its area instead of the soft labels of the official code.
    """
    absent_columns = {"id", "image_path", "mask_path", "split"} - set(manifest.columns)
    if absent_columns:
        raise ValueError(f"The split manifest lacks columns {sorted(absent_columns)}.")
    missing = [split for split in splits if split not in set(manifest["split"])]
    if missing:
        raise ValueError(
            f"Splits {missing} have no rows in the manifest (it has {sorted(set(manifest['split']))})."
        )
    split_rank = {split: rank for rank, split in enumerate(splits)}
    rows = manifest[manifest["split"].isin(splits)]
    rows = rows.assign(_rank=rows["split"].map(split_rank)).sort_values(["_rank", "id"])
    images = np.empty((len(rows), size, size, 3), np.uint8)
    masks = np.empty((len(rows), size, size), np.uint8)
    records = tqdm(
        rows.itertuples(index=False), total=len(rows), desc="Decoding", disable=not progress
    )
    for index, row in enumerate(records):
        images[index] = cv2.resize(
            read_rgb(row.image_path), (size, size), interpolation=cv2.INTER_LINEAR
        )
        mask = read_mask(row.mask_path, threshold=mask_threshold).astype(np.uint8) * 255
        masks[index] = cv2.resize(mask, (size, size), interpolation=cv2.INTER_LINEAR) > 127
    return DecodedCache(
        ids=rows["id"].tolist(), images=images, masks=masks, splits=rows["split"].tolist()
    )
