"""Find (image, mask) pairs in the folder layouts that polyp datasets are distributed in."""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ssformer_repro.errors import UserError

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp"})

DOWNLOAD_HINTS = {
    "kvasir": "Kvasir-SEG: download https://datasets.simula.no/downloads/kvasir-seg.zip and "
    "unpack it so that {root} holds images/ and masks/.",
    "clinicdb": "CVC-ClinicDB: download it from https://polyp.grand-challenge.org/CVCClinicDB/ "
    "and unpack it so that {root} holds 'Original/' and 'Ground Truth/' (or PNG/Original "
    "and 'PNG/Ground Truth').",
    "pranet": "PraNet benchmark: download TrainDataset and TestDataset (links in the PraNet "
    "repository README, https://github.com/DengPingFan/PraNet) and unpack both into {root}.",
    "folder": "Generic layout: put the frames in {root}/images/ and the masks, with the same "
    "file names (any of jpg jpeg png tif tiff bmp), in {root}/masks/.",
}


class DatasetLayoutError(UserError, ValueError):
    """The dataset folder does not match the expected layout; the message lists every problem."""


@dataclass(frozen=True)
class SamplePair:
    """One frame and its mask; `subset` is "all", "train" or a PraNet test-set name."""

    id: str
    image_path: str
    mask_path: str
    subset: str


@dataclass(frozen=True)
class FolderPair:
    """An images folder and its masks folder, relative to the dataset root."""

    images: str
    masks: str
    subset: str = "all"
    id_prefix: str = ""


def discover_pairs(layout: str, root: str | Path) -> list[SamplePair]:
    """List every (image, mask) pair of the dataset at `root` in `layout`, sorted by id."""
    if layout not in LAYOUTS:
        raise DatasetLayoutError(f"Unknown dataset layout {layout!r}; valid: {sorted(LAYOUTS)}.")
    root = Path(root)
    if not root.is_dir():
        raise DatasetLayoutError(
            f"Dataset root {root} does not exist. " + DOWNLOAD_HINTS[layout].format(root=root)
        )
    return sorted(LAYOUTS[layout](root), key=lambda pair: pair.id)


def kvasir_pairs(root: Path) -> list[SamplePair]:
    """Kvasir-SEG: images/*.jpg and masks/*.jpg with the same names (kavsir_bboxes.json ignored)."""
    return _pairs_in_folders(root, [FolderPair("images", "masks")], "kvasir")


def folder_pairs(root: Path) -> list[SamplePair]:
    """Generic: images/ and masks/ of any common format, matched by file stem."""
    return _pairs_in_folders(root, [FolderPair("images", "masks")], "folder")


CLINICDB_CANDIDATES = (
    FolderPair("Original", "Ground Truth"),
    FolderPair("TIF/Original", "TIF/Ground Truth"),
    FolderPair("PNG/Original", "PNG/Ground Truth"),
)


def clinicdb_pairs(root: Path) -> list[SamplePair]:
    """CVC-ClinicDB: Original/ + 'Ground Truth'/ (TIFF), or a TIF/ or PNG/ re-packaging of them."""
    present = [candidate for candidate in CLINICDB_CANDIDATES if (root / candidate.images).is_dir()]
    if not present:
        expected = ", ".join(f"{root / c.images}" for c in CLINICDB_CANDIDATES)
        raise DatasetLayoutError(
            f"No CVC-ClinicDB frames folder found; expected one of: {expected}. "
            + DOWNLOAD_HINTS["clinicdb"].format(root=root)
        )
    if len(present) > 1:
        logger.info("%s holds several CVC-ClinicDB copies; using %s", root, present[0].images)
    return _pairs_in_folders(root, present[:1], "clinicdb")


def pranet_pairs(root: Path) -> list[SamplePair]:
    """PraNet: TrainDataset/{images,masks} and TestDataset/<name>/{images,masks}, ids '<name>/<stem>'."""
    folders = [FolderPair("TrainDataset/images", "TrainDataset/masks", subset="train")]
    test_root = root / "TestDataset"
    test_names = sorted(_visible_dirs(test_root)) if test_root.is_dir() else []
    folders += [
        FolderPair(f"TestDataset/{name}/images", f"TestDataset/{name}/masks", name, f"{name}/")
        for name in test_names
    ]
    problems = [] if test_names else [f"{test_root}: expected TestDataset/<name>/{{images,masks}}"]
    return _pairs_in_folders(root, folders, "pranet", problems)


LAYOUTS: dict[str, Callable[[Path], list[SamplePair]]] = {
    "kvasir": kvasir_pairs,
    "clinicdb": clinicdb_pairs,
    "pranet": pranet_pairs,
    "folder": folder_pairs,
}


def _pairs_in_folders(
    root: Path, folders: list[FolderPair], layout: str, problems: list[str] | None = None
) -> list[SamplePair]:
    """Match images to masks by file stem in each folder pair; raise once listing every problem."""
    pairs: list[SamplePair] = []
    problems = list(problems or [])
    for folder in folders:
        images = _image_files_by_stem(root, folder.images, problems)
        masks = _image_files_by_stem(root, folder.masks, problems)
        if images is None or masks is None:
            continue
        if not images:
            problems.append(f"{root / folder.images}: no image files found")
        problems += [
            f"{root / images[stem]}: image has no mask in {root / folder.masks}"
            for stem in sorted(images.keys() - masks.keys())
        ]
        problems += [
            f"{root / masks[stem]}: mask has no image in {root / folder.images}"
            for stem in sorted(masks.keys() - images.keys())
        ]
        pairs += [
            SamplePair(
                id=folder.id_prefix + stem,
                image_path=(root / images[stem]).as_posix(),
                mask_path=(root / masks[stem]).as_posix(),
                subset=folder.subset,
            )
            for stem in sorted(images.keys() & masks.keys())
        ]
    if problems:
        hint = DOWNLOAD_HINTS[layout].format(root=root)
        raise DatasetLayoutError(
            f"Dataset at {root} does not match the {layout!r} layout ({len(problems)} problems):\n  "
            + "\n  ".join(problems)
            + f"\n{hint}"
        )
    return pairs


def _image_files_by_stem(
    root: Path, relative_folder: str, problems: list[str]
) -> dict[str, PurePosixPath] | None:
    """Map file stem -> path relative to `root` for the image files of a folder.

    Hidden files and non-image files (json, Thumbs.db) are skipped. Returns None, and records
    a problem, when the folder is missing; records a problem for each stem used twice.
    """
    folder = root / relative_folder
    if not folder.is_dir():
        problems.append(f"{folder}: expected folder is missing")
        return None
    files_by_stem: dict[str, PurePosixPath] = {}
    for file in sorted(folder.iterdir()):
        if file.name.startswith(".") or not file.is_file():
            continue
        if file.suffix.lower() not in IMAGE_SUFFIXES:
            logger.debug("Ignoring non-image file %s", file)
            continue
        stem = unicodedata.normalize("NFC", file.stem)  # macOS file systems store NFD names
        if stem in files_by_stem:
            first = files_by_stem[stem].name
            problems.append(f"{file}: duplicate id {stem!r}, also used by {first}")
            continue
        files_by_stem[stem] = PurePosixPath(relative_folder) / file.name
    return files_by_stem


def _visible_dirs(folder: Path) -> list[str]:
    """Names of the non-hidden sub-folders of `folder`."""
    return [
        entry.name
        for entry in folder.iterdir()
        if entry.is_dir() and not entry.name.startswith(".")
    ]
