"""Endoscopy-like synthetic polyp frames and masks, for tests and smoke runs without the real data.

Each frame has reddish textured mucosa with darker vessels, 1..max_polyps smooth polyp blobs
(paler, dome-shaded, with a soft shadow), small specular highlights and an endoscope-like
dark vignette. Everything is drawn from a numpy Generator seeded by (seed, image index), so
image i is the same whatever `n_images` is.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from ssformer_repro.polyps.settings import SyntheticSettings
from ssformer_repro.storage.atomic import atomic_folder

SYNTHETIC_MARKER = "SYNTHETIC.json"
GENERATOR_NAME = "ssformer_repro.polyps.synthetic"

Sample = tuple[str, np.ndarray, np.ndarray]
# The generator's defaults are the `synthetic:` block's (polyps/settings.py).
DEFAULT = {name: field.default for name, field in SyntheticSettings.model_fields.items()}


def generate_synthetic_polyps(
    n_images: int,
    seed: int = DEFAULT["seed"],
    min_size: int = DEFAULT["min_size"],
    max_size: int = DEFAULT["max_size"],
    max_polyps: int = DEFAULT["max_polyps"],
    polyp_size: Sequence[float] = tuple(DEFAULT["polyp_size"]),
    contrast: float = DEFAULT["contrast"],
) -> list[Sample]:
    """Return `n_images` (id, RGB uint8 frame, uint8 0/255 mask) samples, deterministic in `seed`.

    `polyp_size` is the range of a polyp's diameter as a fraction of the frame's short side;
    `contrast` scales how much paler than the mucosa a polyp is (1: as drawn for the tests, more:
    an easier task that a tiny model learns in a few epochs).
    """
    low, high = polyp_size
    if n_images < 1 or not 32 <= min_size <= max_size or max_polyps < 1:
        raise ValueError(
            f"Need n_images >= 1, 32 <= min_size <= max_size and max_polyps >= 1; got "
            f"n_images={n_images}, min_size={min_size}, max_size={max_size}, max_polyps={max_polyps}."
        )
    if not 0 < low <= high <= 0.9 or contrast <= 0:
        raise ValueError(
            f"Need 0 < polyp_size[0] <= polyp_size[1] <= 0.9 and contrast > 0; got "
            f"polyp_size={list(polyp_size)}, contrast={contrast}."
        )
    return [
        _synthetic_sample(
            np.random.default_rng([seed, index]),
            f"synth_{index:04d}",
            (min_size, max_size),
            max_polyps,
            (low, high),
            contrast,
        )
        for index in range(n_images)
    ]


def write_synthetic_dataset(
    samples: Sequence[Sample],
    root: str | Path,
    layout: str,
    jpeg_quality: int = 90,
    generator_parameters: Mapping[str, object] | None = None,
    test_sets: Mapping[str, int] | None = None,
) -> None:
    """Write `samples` in a real dataset's folder layout ("kvasir", "clinicdb" or "pranet").

    For "pranet", the last samples form the test sets, `test_sets` giving each one's size in
    order; the others are the TrainDataset.

    The files are written into a hidden sibling folder that replaces `root` only when complete.
    `root` must be new, empty, or a synthetic dataset written here before (it has SYNTHETIC.json,
    which records `generator_parameters`); anything else is refused so real data is never lost.
    """
    if layout not in SYNTHETIC_WRITERS:
        raise ValueError(
            f"Unknown synthetic layout {layout!r}; valid: {sorted(SYNTHETIC_WRITERS)}."
        )
    root = Path(root)
    _check_replaceable(root)
    marker = {
        "generator": GENERATOR_NAME,
        "layout": layout,
        "jpeg_quality": jpeg_quality,
        "n_images": len(samples),
        "generator_parameters": dict(generator_parameters or {}),
    }
    subsets = _subsets(samples, layout, test_sets or {})
    with atomic_folder(root) as staging:
        SYNTHETIC_WRITERS[layout](subsets, staging, jpeg_quality)
        marker_text = json.dumps(marker, indent=2, sort_keys=True) + "\n"
        (staging / SYNTHETIC_MARKER).write_text(marker_text, encoding="utf-8")


def _subsets(
    samples: Sequence[Sample], layout: str, test_sets: Mapping[str, int]
) -> dict[str, Sequence[Sample]]:
    """The samples of each subset: all of them, or PraNet's TrainDataset and test sets."""
    if layout != "pranet":
        if test_sets:
            raise ValueError(f"test_sets are for the pranet layout, not {layout!r}.")
        return {"all": samples}
    n_train = len(samples) - sum(test_sets.values())
    if not test_sets or n_train < 1 or min(test_sets.values()) < 1:
        raise ValueError(
            f"A synthetic pranet dataset needs test sets of at least one image each and training "
            f"images left; got {len(samples)} images and test sets {dict(test_sets)}."
        )
    subsets, start = {"train": samples[:n_train]}, n_train
    for name, count in test_sets.items():
        subsets[name], start = samples[start : start + count], start + count
    return subsets


def _write_kvasir_layout(
    subsets: Mapping[str, Sequence[Sample]], root: Path, jpeg_quality: int
) -> None:
    """images/<id>.jpg and masks/<id>.jpg; JPEG masks get boundary noise like Kvasir-SEG's."""
    for folder in ("images", "masks"):
        (root / folder).mkdir()
    for sample_id, frame, mask in subsets["all"]:
        Image.fromarray(frame).save(root / "images" / f"{sample_id}.jpg", quality=jpeg_quality)
        Image.fromarray(mask).save(root / "masks" / f"{sample_id}.jpg", quality=jpeg_quality)


def _write_clinicdb_layout(
    subsets: Mapping[str, Sequence[Sample]], root: Path, jpeg_quality: int
) -> None:
    """Original/<n>.tif and 'Ground Truth'/<n>.tif numbered from 1, like CVC-ClinicDB."""
    del jpeg_quality  # TIFF is lossless
    for folder in ("Original", "Ground Truth"):
        (root / folder).mkdir()
    for number, (_, frame, mask) in enumerate(subsets["all"], start=1):
        Image.fromarray(frame).save(root / "Original" / f"{number}.tif")
        Image.fromarray(mask).save(root / "Ground Truth" / f"{number}.tif")


def _write_pranet_layout(
    subsets: Mapping[str, Sequence[Sample]], root: Path, jpeg_quality: int
) -> None:
    """TrainDataset/{images,masks}/<id>.png and TestDataset/<name>/{images,masks}/<id>.png."""
    del jpeg_quality  # PraNet's files are PNG
    for subset, samples in subsets.items():
        folder = root / "TrainDataset" if subset == "train" else root / "TestDataset" / subset
        for kind in ("images", "masks"):
            (folder / kind).mkdir(parents=True)
        for sample_id, frame, mask in samples:
            Image.fromarray(frame).save(folder / "images" / f"{sample_id}.png")
            Image.fromarray(mask).save(folder / "masks" / f"{sample_id}.png")


Writer = Callable[[Mapping[str, Sequence[Sample]], Path, int], None]
SYNTHETIC_WRITERS: dict[str, Writer] = {
    "kvasir": _write_kvasir_layout,
    "clinicdb": _write_clinicdb_layout,
    "pranet": _write_pranet_layout,
}


def _check_replaceable(root: Path) -> None:
    """Refuse to overwrite anything but a missing/empty folder or our own synthetic dataset."""
    if not root.exists() or (root.is_dir() and not any(root.iterdir())):
        return
    marker = root / SYNTHETIC_MARKER
    try:
        ours = json.loads(marker.read_text(encoding="utf-8")).get("generator") == GENERATOR_NAME
    except (OSError, ValueError, AttributeError):
        ours = False
    if not ours:
        raise FileExistsError(
            f"{root} is not empty and has no {SYNTHETIC_MARKER} written by this generator; "
            "refusing to overwrite it. Choose a new or empty folder for the synthetic dataset."
        )


def _synthetic_sample(
    rng: np.random.Generator,
    sample_id: str,
    frame_size: tuple[int, int],
    max_polyps: int,
    polyp_size: tuple[float, float],
    contrast: float,
) -> Sample:
    """Draw one frame and its mask."""
    min_size, max_size = frame_size
    height, width = (int(side) for side in rng.integers(min_size, max_size + 1, size=2))
    base_colour = np.array([0.78, 0.40, 0.36]) + rng.uniform(-0.06, 0.06, size=3)
    frame = _mucosa(rng, height, width, base_colour)
    mask = np.zeros((height, width), np.uint8)
    for _ in range(rng.integers(1, max_polyps + 1)):
        polyp = _polyp_shape(rng, height, width, polyp_size)
        frame = _paint_polyp(rng, frame, polyp, contrast)
        mask |= polyp
    frame = _add_specular_highlights(rng, frame)
    frame = frame * _vignette(rng, height, width)[..., None]
    frame = frame + rng.normal(0.0, 0.012, size=frame.shape)
    return sample_id, np.clip(frame * 255 + 0.5, 0, 255).astype(np.uint8), mask


def _smooth_noise(rng: np.random.Generator, height: int, width: int, cells: int) -> np.ndarray:
    """Low-frequency noise in [-1, 1]: a coarse random grid upsampled with cubic interpolation."""
    grid = rng.standard_normal((cells, cells)).astype(np.float32)
    field = cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
    return field / (np.abs(field).max() + 1e-6)


def _mucosa(
    rng: np.random.Generator, height: int, width: int, base_colour: np.ndarray
) -> np.ndarray:
    """Reddish mucosa (float RGB in [0, 1]) with blotchy texture and darker, redder vessels."""
    texture = 0.6 * _smooth_noise(rng, height, width, 4) + 0.4 * _smooth_noise(
        rng, height, width, 12
    )
    frame = base_colour[None, None, :] * (1 + 0.15 * texture)[..., None]
    vessels = np.zeros((height, width), np.float32)
    step = min(height, width) / 10
    for _ in range(rng.integers(3, 8)):
        angles = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.normal(0, 0.5, size=12))
        steps = step * np.stack([np.cos(angles), np.sin(angles)], axis=1)
        points = rng.uniform([0, 0], [width, height]) + np.cumsum(steps, axis=0)
        thickness = int(rng.integers(1, 3))
        cv2.polylines(vessels, [points.astype(np.int32)], False, 1.0, thickness, cv2.LINE_AA)
    vessels = cv2.GaussianBlur(vessels, (0, 0), 0.8)
    return frame * (1 - vessels[..., None] * np.array([0.15, 0.35, 0.30]))


def _polyp_shape(
    rng: np.random.Generator, height: int, width: int, size: tuple[float, float]
) -> np.ndarray:
    """A rotated ellipse (aspect 0.5..2, diameter `size` of the short side), wobbly boundary."""
    diameter = rng.uniform(*size) * min(height, width)
    aspect = rng.uniform(0.5, 2.0)
    semi_axes = np.array([np.sqrt(aspect), 1 / np.sqrt(aspect)]) * diameter / 2
    angles = np.linspace(0, 2 * np.pi, 96, endpoint=False)
    wobble = 1 + sum(
        rng.uniform(0, 0.08) * np.cos(k * angles + rng.uniform(0, 2 * np.pi)) for k in (2, 3, 4)
    )
    outline = np.stack([np.cos(angles), np.sin(angles)], axis=1) * semi_axes * wobble[:, None]
    rotation = rng.uniform(0, np.pi)
    rotate = np.array([[np.cos(rotation), -np.sin(rotation)], [np.sin(rotation), np.cos(rotation)]])
    outline = outline @ rotate.T
    reach = np.abs(outline).max(axis=0)
    low = np.minimum(reach + 1, [width / 2, height / 2])
    centre = rng.uniform(low, [width - low[0], height - low[1]])
    polyp = np.zeros((height, width), np.uint8)
    cv2.fillPoly(polyp, [np.round(outline + centre).astype(np.int32)], 255)
    return polyp


def _paint_polyp(
    rng: np.random.Generator, frame: np.ndarray, polyp: np.ndarray, contrast: float
) -> np.ndarray:
    """Blend a paler, dome-shaded copy of the mucosa into `polyp`, with a soft shadow around it;
    `contrast` scales the paling."""
    height, width = polyp.shape
    inside = polyp.astype(np.float32) / 255
    depth = cv2.distanceTransform(polyp, cv2.DIST_L2, 3)
    dome = np.sqrt(depth / max(float(depth.max()), 1.0))
    light = rng.uniform(-1, 1, size=2)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    tilt = (light[0] * xs / width + light[1] * ys / height) * 0.15
    shading = 0.85 + 0.25 * dome + tilt + 0.05 * _smooth_noise(rng, height, width, 16)
    tint = 1 + contrast * (np.array([0.05, 0.18, 0.15]) + rng.uniform(-0.05, 0.05, size=3))
    smooth_surface = cv2.GaussianBlur(frame, (0, 0), 2.0)  # vessels fade under the polyp
    polyp_pixels = smooth_surface * tint * shading[..., None]
    shadow = cv2.GaussianBlur(inside, (0, 0), max(2.0, float(depth.max()) * 0.4))
    frame = frame * (1 - 0.3 * shadow * (1 - inside))[..., None]
    alpha = cv2.GaussianBlur(inside, (0, 0), 0.8)[..., None]
    return frame * (1 - alpha) + polyp_pixels * alpha


def _add_specular_highlights(rng: np.random.Generator, frame: np.ndarray) -> np.ndarray:
    """A few small, soft, near-white reflections, as the endoscope light makes on wet mucosa."""
    height, width = frame.shape[:2]
    highlights = np.zeros((height, width), np.float32)
    max_radius = max(2, min(height, width) // 40)
    for _ in range(rng.integers(2, 6)):
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        axes = tuple(int(radius) for radius in rng.integers(1, max_radius + 1, size=2))
        angle = float(rng.uniform(0, 180))
        cv2.ellipse(highlights, centre, axes, angle, 0, 360, 1.0, -1)
    highlights = cv2.GaussianBlur(highlights, (0, 0), 0.7)[..., None]
    return frame * (1 - highlights) + 0.97 * highlights


def _vignette(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Brightness falling off towards the corners, like an endoscope's circular field of view."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    radius = np.hypot(2 * xs / (width - 1) - 1, 2 * ys / (height - 1) - 1)
    falloff = np.clip((radius - 0.55) / 0.85, 0, 1)
    return 1 - rng.uniform(0.6, 0.9) * falloff**2 * (3 - 2 * falloff)
