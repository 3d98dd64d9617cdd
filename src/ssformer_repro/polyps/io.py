"""Read polyp frames and masks as arrays, with errors that name the file and say what to do."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import numpy as np
from PIL import Image

SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})
TIFF_SUFFIXES = frozenset({".tif", ".tiff"})

T = TypeVar("T")


class ImageReadError(ValueError):
    """An image or mask file is missing, truncated, too large or not an image."""


def read_rgb(path: str | Path) -> np.ndarray:
    """Decode an image file as an (H, W, 3) uint8 RGB array, whatever its colour mode."""
    return _decode(path, _as_rgb)


def read_mask(path: str | Path, threshold: int = 127) -> np.ndarray:
    """Decode a mask file as an (H, W) bool array: grey value > `threshold` is foreground.

    JPEG masks (Kvasir-SEG) are not binary (values 0..7 and 248..255), so a threshold,
    not an equality test against 255, keeps the polyp edges.
    """
    return read_gray(path) > threshold


def read_gray(path: str | Path) -> np.ndarray:
    """Decode an image file as an (H, W) uint8 grey array (a mask before thresholding)."""
    return _decode(path, _as_gray)


def image_size(path: str | Path) -> tuple[int, int]:
    """Return (height, width) of an image file, reading only its header."""
    width, height = _decode(path, lambda image: image.size, load=False)
    return height, width


def image_mode(path: str | Path) -> str:
    """Return the Pillow mode of an image file ("RGB", "L", "I;16", "RGBA", "P"...), header only."""
    return _decode(path, lambda image: image.mode, load=False)


def _decode(path: str | Path, convert: Callable[[Image.Image], T], load: bool = True) -> T:
    """Open `path` with Pillow (tifffile as a fallback for TIFF) and apply `convert` to it."""
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"{path}: file not found. Check the dataset root and file name.")
    try:
        with _bomb_warnings_as_errors(), Image.open(path) as image:
            if load:
                image.load()
            return convert(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageReadError(
            f"{path}: refused to decode ({error}). The file claims a huge size; "
            "replace it with a genuine image."
        ) from error
    except Exception as pillow_error:
        if path.suffix.lower() not in TIFF_SUFFIXES:
            raise ImageReadError(
                f"{path}: cannot decode image ({pillow_error}). The file is truncated, "
                "corrupt or not an image: re-download or re-extract it."
            ) from pillow_error
        return convert(_read_tiff_with_tifffile(path, pillow_error))


@contextmanager
def _bomb_warnings_as_errors() -> Iterator[None]:
    """Raise Pillow's decompression-bomb warning instead of printing it."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        yield


def _read_tiff_with_tifffile(path: Path, pillow_error: Exception) -> Image.Image:
    """Decode a TIFF that Pillow cannot read (e.g. 16-bit grey + alpha) into a Pillow image."""
    try:
        import tifffile  # noqa: PLC0415 (optional dependency, only needed for exotic TIFFs)

        array = tifffile.imread(path)
    except Exception as tifffile_error:
        raise ImageReadError(
            f"{path}: cannot decode TIFF (Pillow: {pillow_error}; tifffile: {tifffile_error}). "
            "The file is truncated or corrupt: re-download or re-extract it."
        ) from tifffile_error
    if array.dtype == np.uint16:
        array = (array >> 8).astype(np.uint8)
    if array.dtype != np.uint8 or array.ndim not in (2, 3):
        raise ImageReadError(
            f"{path}: unsupported TIFF pixel format {array.dtype} with shape {array.shape}. "
            "Convert it to an 8-bit RGB or grey image."
        )
    return Image.fromarray(np.ascontiguousarray(array))


def _as_rgb(image: Image.Image) -> np.ndarray:
    """RGB pixels of `image`; alpha is dropped, palette/grey/CMYK converted, 16-bit scaled."""
    if image.mode in SIXTEEN_BIT_MODES:
        image = _scaled_to_8_bit(image)
    return np.array(image.convert("RGB"))


def _as_gray(image: Image.Image) -> np.ndarray:
    """Grey values of `image` as uint8; 16-bit masks are scaled to 8 bit."""
    if image.mode in SIXTEEN_BIT_MODES:
        return np.array(_scaled_to_8_bit(image))
    return np.array(image.convert("L"))


def _scaled_to_8_bit(image: Image.Image) -> Image.Image:
    """Map a 16-bit grey image to 8 bit by keeping the high byte (65535 -> 255)."""
    values = np.clip(np.asarray(image, dtype=np.int64), 0, 65535)
    return Image.fromarray((values >> 8).astype(np.uint8))
