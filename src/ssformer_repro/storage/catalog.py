"""The project's own Kedro dataset types, used in conf/base/catalog.yml.

- `AtomicDataset` wraps any local file dataset (CSV, JSON, text, PNG...) so that it saves
  atomically: a reader, or `kedro run --only-missing-outputs`, sees the old file or the complete
  new one, never a file cut short by a crash.
- `DecodedCacheDataset` stores a `DecodedCache` as .npy files that load memory-mapped.
- `FolderDataset` hands a node the folder it may write into (a run's checkpoints), so that the
  catalog stays the one place that knows where things live.

A run's entries give `run: "{run}"`: the run's name in their path is then its folder by the
grid's rule (`GridRun.folder`: a cross-validation fold is a sub-folder of its seed's), so one
entry serves every run, folds included.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from kedro.io import AbstractDataset, DatasetError

from ssformer_repro.grid.runs import GridRun
from ssformer_repro.polyps.cache import DecodedCache
from ssformer_repro.storage.atomic import atomic_folder, atomic_path, remove_partial_writes

IMAGES_FILE = "images.npy"
MASKS_FILE = "masks.npy"
INDEX_FILE = "index.csv"


def in_run_folder(path: str, run: str | None) -> Path:
    """`path` with the folder named after `run` replaced by the run's folder (GridRun.folder),
    e.g. `data/06_models/kvasir.mit_b0.pld.seed42.fold3` -> `.../kvasir.mit_b0.pld.seed42/fold3`."""
    if run is None:
        return Path(path)
    folder = GridRun.parse(run).folder
    return Path(*(folder if part == run else part for part in Path(path).parts))


class AtomicDataset(AbstractDataset[Any, Any]):
    """Save `dataset` (a catalog entry without its filepath) to `filepath` atomically.

    Example catalog entry::

        kvasir.split_manifest:
          type: ssformer_repro.storage.catalog.AtomicDataset
          filepath: data/05_model_input/kvasir_split.csv
          dataset: {type: pandas.CSVDataset, save_args: {index: false}}
    """

    def __init__(
        self,
        dataset: dict[str, Any],
        filepath: str,
        run: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        if "filepath" in dataset:
            raise DatasetError(
                f"AtomicDataset {filepath}: give `filepath` beside `dataset`, not inside it."
            )
        if "://" in filepath:
            raise DatasetError(
                f"AtomicDataset {filepath}: only local files can be renamed atomically."
            )
        self._dataset = dict(dataset)
        self._filepath = in_run_folder(filepath, run)
        self._final = self._wrapped(self._filepath)
        self.metadata = metadata

    def load(self) -> Any:
        return self._final.load()

    def save(self, data: Any) -> None:
        if self._filepath.parent.is_dir():  # partial files of saves killed earlier
            remove_partial_writes(self._filepath.parent, of=self._filepath)
        with atomic_path(self._filepath) as partial:
            self._wrapped(partial).save(data)
        self._final.release()  # drop any file-system cache that saw the old file

    def _exists(self) -> bool:
        return self._filepath.is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath.as_posix(), "dataset": self._dataset.get("type")}

    def _wrapped(self, path: Path) -> AbstractDataset:
        return AbstractDataset.from_config(path.name, {**self._dataset, "filepath": str(path)})


class DecodedCacheDataset(AbstractDataset[DecodedCache, DecodedCache]):
    """A folder with images.npy, masks.npy and index.csv (id, split).

    Loading memory-maps the arrays (`mmap_mode="r"`), so DataLoader workers share the page
    cache instead of each holding a copy. Saving writes a hidden sibling folder and swaps it
    in only when complete, so an interrupted save never leaves a cache that loads.

    Example catalog entry::

        kvasir.decoded_cache:
          type: ssformer_repro.storage.catalog.DecodedCacheDataset
          path: data/05_model_input/kvasir_cache
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
        with atomic_folder(self._path) as staging:
            np.save(staging / IMAGES_FILE, np.ascontiguousarray(data.images))
            np.save(staging / MASKS_FILE, np.ascontiguousarray(data.masks))
            index = pd.DataFrame({"id": data.ids, "split": data.splits})
            index.to_csv(staging / INDEX_FILE, index=False)

    def _exists(self) -> bool:
        return all((self._path / name).is_file() for name in (IMAGES_FILE, MASKS_FILE, INDEX_FILE))

    def _describe(self) -> dict[str, Any]:
        return {"path": self._path.as_posix()}


class FolderDataset(AbstractDataset[None, Path]):
    """Loads as the `Path` of a folder that a node writes into itself; nothing is saved.

    Example catalog entry::

        "{run}.run_folder":
          type: ssformer_repro.storage.catalog.FolderDataset
          path: data/06_models/{run}
    """

    def __init__(
        self, path: str, run: str | None = None, metadata: dict[str, Any] | None = None
    ) -> None:
        self._path = in_run_folder(path, run)
        self.metadata = metadata

    def load(self) -> Path:
        return self._path

    def save(self, data: None) -> None:
        raise DatasetError(f"FolderDataset {self._path} is an input only: nodes write into it.")

    def _exists(self) -> bool:
        return self._path.is_dir()

    def _describe(self) -> dict[str, Any]:
        return {"path": self._path.as_posix()}
