"""A throw-away synthetic dataset at realistic frame sizes, as JPEG files and as a decoded cache."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ssformer_repro.polyps.cache import DecodedCache, build_decoded_cache
from ssformer_repro.polyps.layouts import discover_pairs
from ssformer_repro.polyps.splits import build_split_manifest
from ssformer_repro.polyps.synthetic import generate_synthetic_polyps, write_synthetic_dataset
from ssformer_repro.storage.catalog import DecodedCacheDataset

logger = logging.getLogger(__name__)

LAYOUT = "kvasir"  # JPEG frames and JPEG masks, the costlier of the study's two datasets to decode
SPLIT = "train"


@dataclass(frozen=True)
class Workspace:
    """The synthetic dataset's folder and its manifest (every row in the "train" split)."""

    root: Path
    manifest: pd.DataFrame

    def decoded_cache(self, size: int) -> DecodedCache:
        """The frames decoded at `size` and saved like the pipeline's cache, loaded memory-mapped."""
        dataset = DecodedCacheDataset(str(self.root / f"decoded_{size}"))
        if not dataset.exists():
            logger.info("Decoding %d frames at %d px into the cache.", len(self.manifest), size)
            dataset.save(build_decoded_cache(self.manifest, size, splits=(SPLIT,)))
        return dataset.load()


def create_workspace(
    root: str | Path, n_images: int, frame_size: tuple[int, int], seed: int
) -> Workspace:
    """Write `n_images` synthetic Kvasir-like frames (sides within `frame_size`) under `root`."""
    root = Path(root)
    low, high = frame_size
    logger.info("Writing %d synthetic %d-%d px JPEG frames to %s.", n_images, low, high, root)
    samples = generate_synthetic_polyps(n_images, seed, min_size=low, max_size=high)
    write_synthetic_dataset(samples, root / "frames", layout=LAYOUT)
    pairs = discover_pairs(LAYOUT, root / "frames")
    manifest = build_split_manifest(pairs, {pair.id: SPLIT for pair in pairs})
    return Workspace(root=root, manifest=manifest)
