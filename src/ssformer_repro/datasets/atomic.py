"""A Kedro dataset wrapper that makes any local file dataset save atomically.

The wrapped dataset (CSV, JSON, text, PNG...) saves to a hidden sibling file, which is flushed
to disk and then renamed over the real file. A reader, or `kedro run --only-missing-outputs`,
sees the old file or the complete new one, never a file cut short by a crash.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError

from ssformer_repro.atomic_files import (
    DiskFullError,
    explain_disk_full,
    fsync_folder,
    is_disk_full,
)

PARTIAL_TAG_LENGTH = 8


class AtomicDataset(AbstractDataset[Any, Any]):
    """Save `dataset` (a catalog entry without its filepath) to `filepath` atomically.

    Example catalog entry::

        kvasir.split_manifest:
          type: ssformer_repro.datasets.atomic.AtomicDataset
          filepath: data/05_model_input/kvasir_split.csv
          dataset: {type: pandas.CSVDataset, save_args: {index: false}}
    """

    def __init__(
        self, dataset: dict[str, Any], filepath: str, metadata: dict[str, Any] | None = None
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
        self._filepath = Path(filepath)
        self._final = self._wrapped(self._filepath)
        self.metadata = metadata

    def load(self) -> Any:
        return self._final.load()

    def save(self, data: Any) -> None:
        self._filepath.parent.mkdir(parents=True, exist_ok=True)
        for leftover in self._partials():  # of saves killed earlier
            leftover.unlink(missing_ok=True)  # safe: a run holds its namespace's lock
        tag = uuid.uuid4().hex[:PARTIAL_TAG_LENGTH]
        partial = self._filepath.with_name(f"{self._partial_prefix}{tag}{self._partial_suffix}")
        try:
            self._wrapped(partial).save(data)
            with open(partial, "rb+") as file:
                os.fsync(file.fileno())
            os.replace(partial, self._filepath)
        except Exception as error:
            disk_full = _disk_full_cause(error)
            if disk_full is not None:
                message = explain_disk_full(disk_full, self._filepath)
                raise DiskFullError(disk_full.errno, message) from error
            raise
        finally:
            partial.unlink(missing_ok=True)
        fsync_folder(self._filepath.parent)
        self._final.release()  # drop any file-system cache that saw the old file

    def _exists(self) -> bool:
        return self._filepath.is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath.as_posix(), "dataset": self._dataset.get("type")}

    @property
    def _partial_prefix(self) -> str:
        return f".{self._filepath.stem}."

    @property
    def _partial_suffix(self) -> str:
        """Ends with the real suffix: some datasets (MatplotlibDataset) take the format from it."""
        return f".partial{self._filepath.suffix}"

    def _partials(self) -> list[Path]:
        """Hidden partial files of this dataset in its folder."""
        length = len(self._partial_prefix) + PARTIAL_TAG_LENGTH + len(self._partial_suffix)
        return [
            sibling
            for sibling in self._filepath.parent.iterdir()
            if len(sibling.name) == length
            and sibling.name.startswith(self._partial_prefix)
            and sibling.name.endswith(self._partial_suffix)
        ]

    def _wrapped(self, path: Path) -> AbstractDataset:
        return AbstractDataset.from_config(path.name, {**self._dataset, "filepath": str(path)})


def _disk_full_cause(error: BaseException | None) -> OSError | None:
    """The "disk full" OSError behind `error` (Kedro wraps save errors in DatasetError), if any."""
    while error is not None:
        if isinstance(error, OSError) and is_disk_full(error):
            return error
        error = error.__cause__ or error.__context__
    return None
