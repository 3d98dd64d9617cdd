"""Kedro dataset storing a DecodedCache as .npy files that load memory-mapped."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from kedro.io import AbstractDataset, DatasetError

from ssformer_repro.data.cache import DecodedCache
from ssformer_repro.data.io import replace_directory

IMAGES_FILE = "images.npy"
MASKS_FILE = "masks.npy"
INDEX_FILE = "index.csv"


class DecodedCacheDataset(AbstractDataset[DecodedCache, DecodedCache]):
    """A folder with images.npy, masks.npy and index.csv (id, split).

    Loading memory-maps the arrays (`mmap_mode="r"`), so DataLoader workers share the page
    cache instead of each holding a copy. Saving writes a hidden sibling folder and swaps it
    in only when complete, so an interrupted save never leaves a cache that loads.

    Example catalog entry::

        kvasir.decoded_cache:
          type: ssformer_repro.datasets.decoded_cache.DecodedCacheDataset
          path: data/03_primary/kvasir/decoded_352
    """

    def __init__(self, path: str, metadata: dict[str, Any] | None = None) -> None:
        self._path = Path(path)
        self.metadata = metadata

    def load(self) -> DecodedCache:
        missing = [
            name
            for name in (IMAGES_FILE, MASKS_FILE, INDEX_FILE)
            if not (self._path / name).is_file()
        ]
        if missing:
            raise DatasetError(
                f"Decoded cache {self._path} is missing {missing}; rebuild it by re-running the "
                "node that saves it."
            )
        try:
            index = pd.read_csv(self._path / INDEX_FILE, dtype=str, keep_default_na=False)
            images = np.load(self._path / IMAGES_FILE, mmap_mode="r")
            masks = np.load(self._path / MASKS_FILE, mmap_mode="r")
            return DecodedCache(
                ids=index["id"].tolist(), images=images, masks=masks, splits=index["split"].tolist()
            )
        except (OSError, ValueError, KeyError) as error:
            raise DatasetError(
                f"Decoded cache {self._path} is corrupt ({error}); delete it and rebuild it."
            ) from error

    def save(self, data: DecodedCache) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(
            tempfile.mkdtemp(prefix=f".{self._path.name}.writing-", dir=self._path.parent)
        )
        try:
            np.save(staging / IMAGES_FILE, np.ascontiguousarray(data.images))
            np.save(staging / MASKS_FILE, np.ascontiguousarray(data.masks))
            index = pd.DataFrame({"id": data.ids, "split": data.splits})
            index.to_csv(staging / INDEX_FILE, index=False)
            replace_directory(staging, self._path)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)

    def _exists(self) -> bool:
        return all((self._path / name).is_file() for name in (IMAGES_FILE, MASKS_FILE, INDEX_FILE))

    def _describe(self) -> dict[str, Any]:
        return {"path": self._path.as_posix()}
