"""Helpers that write small image and mask files, so the data tests ingest real files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def random_rgb(height: int = 32, width: int = 48, seed: int = 0) -> np.ndarray:
    """A smooth-ish random RGB frame (smooth so JPEG keeps it close to the original)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(4, 4, 3), dtype=np.uint8)
    return np.array(Image.fromarray(coarse).resize((width, height), Image.BILINEAR))


def noise_rgb(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Pixel noise: compresses badly, so its files are large enough to truncate past the header."""
    return np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)


def ellipse_mask(height: int = 32, width: int = 48) -> np.ndarray:
    """A bool ellipse in the middle of the frame, covering about a third of it."""
    ys, xs = np.mgrid[0:height, 0:width]
    return ((ys - height / 2) / (height / 3)) ** 2 + ((xs - width / 2) / (width / 3)) ** 2 <= 1


def write_image(path: Path, pixels: np.ndarray, **save_options: object) -> Path:
    """Save `pixels` with Pillow (format from the suffix), creating parent folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, **save_options)
    return path


def write_mask(path: Path, mask: np.ndarray, **save_options: object) -> Path:
    """Save a bool mask as an 8-bit 0/255 grey image (JPEG adds boundary noise, as in Kvasir)."""
    return write_image(path, mask.astype(np.uint8) * 255, **save_options)


def write_pair(
    root: Path,
    images: str,
    masks: str,
    image_name: str,
    mask_name: str | None = None,
    height: int = 32,
    width: int = 48,
    seed: int = 0,
) -> tuple[Path, Path]:
    """Write one frame into root/images and its ellipse mask into root/masks."""
    image_path = write_image(root / images / image_name, random_rgb(height, width, seed))
    mask_path = write_mask(root / masks / (mask_name or image_name), ellipse_mask(height, width))
    return image_path, mask_path


def truncate(path: Path) -> Path:
    """Cut a file to half its length, as an interrupted download would."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path
