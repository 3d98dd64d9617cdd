"""Frames to segment: every file under a folder, read as RGB or skipped with its reason.

Bad input never stops a batch: a frame that cannot be read (empty, truncated, not an image, a
claimed size past Pillow's decompression-bomb guard) is kept as a skipped row with the reason,
and grey, 16-bit, RGBA, palette and CMYK frames are converted to 8-bit RGB (polyps.io).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import albumentations as A
import pandas as pd
import torch
from torch.utils.data import Dataset

from ssformer_repro.polyps.io import ImageReadError, image_mode, read_rgb
from ssformer_repro.polyps.layouts import IMAGE_SUFFIXES

OK = "ok"
FRAME_COLUMNS = ("id", "source", "status")


def find_frames(folder: str | Path) -> pd.DataFrame:
    """Every non-hidden file under `folder` (nested folders too), in sorted order, with its id.

    A frame's id is its path below `folder` without the suffix (`seq1/frame_001`), or with it
    where two files differ by suffix alone. Files of other types are listed as skipped.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"predict.input: {folder} is not a folder. Give the folder of frames to segment."
        )
    files = sorted(
        path
        for path in folder.rglob("*")
        if path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    )
    if not files:
        raise FileNotFoundError(
            f"predict.input: {folder} holds no files. Give a folder of JPEG, PNG, TIFF or BMP "
            "frames (nested folders are searched)."
        )
    stems = [path.relative_to(folder).with_suffix("").as_posix() for path in files]
    clashing = {stem for stem in stems if stems.count(stem) > 1}
    ids = [
        path.relative_to(folder).as_posix() if stem in clashing else stem
        for path, stem in zip(files, stems, strict=True)
    ]
    supported = ", ".join(sorted(IMAGE_SUFFIXES))
    status = [
        OK if path.suffix.lower() in IMAGE_SUFFIXES else f"skipped: not an image file ({supported})"
        for path in files
    ]
    return pd.DataFrame({"id": ids, "source": [str(path) for path in files], "status": status})


class FrameDataset(Dataset):
    """The frames of `find_frames`, resized and normalised by `transform`, with their sizes.

    An item is {"image", "id", "source", "size", "status"} for a frame that could be read, and
    {"id", "source", "status"} (the reason it is skipped) for one that could not.
    """

    def __init__(self, frames: pd.DataFrame, transform: A.Compose) -> None:
        self.frames = frames.reset_index(drop=True)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int) -> dict[str, Any]:
        row = self.frames.iloc[index]
        item = {"id": row["id"], "source": row["source"], "status": row["status"]}
        if row["status"] != OK:
            return item
        path = Path(row["source"])
        if path.stat().st_size == 0:
            return {**item, "status": "skipped: empty file (0 bytes)"}
        try:
            mode = image_mode(path)
            image = read_rgb(path)
        except ImageReadError as error:
            return {**item, "status": f"skipped: {_reason(error, path)}"}
        converted = "" if mode == "RGB" else f"ok (converted from {mode} to RGB)"
        return {
            **item,
            "image": self.transform(image=image)["image"],
            "size": image.shape[:2],
            "status": converted or OK,
        }


def collate_frames(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack the frames that could be read; keep the skipped ones' rows apart."""
    read = [item for item in batch if "image" in item]
    return {
        "image": torch.stack([item["image"] for item in read]) if read else None,
        "id": [item["id"] for item in read],
        "source": [item["source"] for item in read],
        "size": [item["size"] for item in read],
        "status": [item["status"] for item in read],
        "skipped": [
            {key: item[key] for key in FRAME_COLUMNS} for item in batch if "image" not in item
        ],
    }


def _reason(error: ImageReadError, path: Path) -> str:
    """The error's message without the file name, which the row already has."""
    return str(error).removeprefix(f"{path}: ")
