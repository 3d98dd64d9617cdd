"""Bad input files give a clear error naming the file, or a counted, logged fix, never a crash.

Each case goes through the real ingestion: `discover_pairs` on a dataset folder, then
`summarise_pairs` (the data_processing node that reads every file once), then the decoded cache.
"""

from __future__ import annotations

import logging
import struct
import tempfile
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image

from ssformer_repro.polyps.cache import build_decoded_cache
from ssformer_repro.polyps.layouts import IMAGE_SUFFIXES, DatasetLayoutError, discover_pairs
from ssformer_repro.polyps.splits import SplitError, read_id_list, split_from_id_lists
from ssformer_repro.polyps.validation import DatasetValidationError, summarise_pairs

SIDE = 24


def disk_mask(height: int = SIDE, width: int = SIDE) -> np.ndarray:
    rows, cols = np.mgrid[0:height, 0:width]
    return (rows - height / 2) ** 2 + (cols - width / 2) ** 2 <= (min(height, width) / 3) ** 2


def write(path: Path, image: Image.Image) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def frame(mode: str = "RGB", side: int = SIDE) -> Image.Image:
    pixels = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
    return Image.fromarray(pixels).convert(mode)


def mask_image(values: np.ndarray | None = None) -> Image.Image:
    return Image.fromarray(values if values is not None else disk_mask().astype(np.uint8) * 255)


def folder_dataset(root: Path, stem: str, image: Image.Image, suffix: str = ".png") -> Path:
    """A 'folder' layout dataset holding one good pair plus the pair under test, `stem`."""
    write(root / "images" / "good.png", frame())
    write(root / "masks" / "good.png", mask_image())
    write(root / "images" / f"{stem}{suffix}", image)
    write(
        root / "masks" / f"{stem}.png",
        mask_image(disk_mask(*image.size[::-1]).astype(np.uint8) * 255),
    )
    return root


def ingest(root: Path, **options) -> pd.DataFrame:
    """Discover, validate and cache a 'folder' dataset, as the data_processing pipeline does."""
    pairs = discover_pairs("folder", root)
    summary = summarise_pairs(pairs, **options)
    manifest = pd.DataFrame(
        [(p.id, p.image_path, p.mask_path, "train") for p in pairs],
        columns=["id", "image_path", "mask_path", "split"],
    )
    build_decoded_cache(manifest, size=32, splits=("train",))
    return summary


@pytest.mark.parametrize(
    "mode", ["L", "LA", "RGBA", "P", "I;16", "I", "CMYK", "1"], ids=lambda mode: mode
)
def test_grey_rgba_16_bit_palette_and_other_modes_are_read_as_rgb(
    tmp_path: Path, mode: str
) -> None:
    suffix = ".jpg" if mode == "CMYK" else ".tif" if mode in ("I", "CMYK") else ".png"
    root = folder_dataset(tmp_path, "odd", frame(mode), suffix)
    summary = ingest(root)
    assert summary.set_index("id").loc["odd", ["height", "width"]].tolist() == [SIDE, SIDE]


def truncated_jpeg(path: Path) -> None:
    write(path, frame())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def not_an_image(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("<html>404 Not Found</html>")


def decompression_bomb(path: Path) -> None:
    """A 300-byte PNG whose header claims 100000 x 100000 pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", 100_000, 100_000, 1, 0, 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(16)))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (truncated_jpeg, r"bad\.jpg: cannot decode image .*truncated"),
        (not_an_image, r"bad\.jpg: cannot decode image .*not an image"),
        (decompression_bomb, r"bad\.jpg: refused to decode .*decompression bomb"),
    ],
    ids=["truncated", "not-an-image", "decompression-bomb"],
)
def test_unreadable_images_are_a_clear_error_naming_the_file(
    tmp_path: Path, damage, message: str
) -> None:
    root = folder_dataset(tmp_path, "ok", frame())
    write(root / "masks" / "bad.png", mask_image())
    damage(root / "images" / "bad.jpg")

    with pytest.raises(DatasetValidationError, match=rf"1 of 3 .*invalid:\n  bad: .*{message}"):
        ingest(root)


def test_mask_of_another_size_is_a_clear_error_naming_both_files(tmp_path: Path) -> None:
    root = folder_dataset(tmp_path, "ok", frame())
    write(root / "images" / "wide.png", frame().resize((SIDE * 2, SIDE)))
    write(root / "masks" / "wide.png", mask_image())

    with pytest.raises(DatasetValidationError, match=r"wide: image .*wide\.png is 24x48 but mask"):
        ingest(root)


def soft_mask() -> np.ndarray:
    """A 64 px mask with a region of 100 and one of 200 away from its edges (soft labels)."""
    values = disk_mask(64, 64).astype(np.uint8) * 255
    values[:8, :8], values[28:36, 28:36] = 100, 200
    return values


def soft_pair(root: Path) -> None:
    write(root / "images" / "soft.png", frame(side=64))
    write(root / "masks" / "soft.png", mask_image(soft_mask()))


def test_masks_with_grey_regions_are_named_and_binarised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = folder_dataset(tmp_path, "ok", frame())
    soft_pair(root)

    with caplog.at_level(logging.WARNING):
        summary = ingest(root, mask_threshold=127)

    assert "1 of 3 masks have mid-grey regions" in caplog.text
    assert "binarised at grey value > 127, check them: soft (128 px of 100..200)" in caplog.text
    fraction = summary.set_index("id").loc["soft", "foreground_fraction"]
    assert fraction == pytest.approx((soft_mask() > 127).mean())


def test_masks_with_more_than_two_values_are_an_error_when_configured(tmp_path: Path) -> None:
    root = folder_dataset(tmp_path, "ok", frame())
    soft_pair(root)

    with pytest.raises(
        DatasetValidationError,
        match=r"soft: mask .*soft\.png has 4 grey values, not two \(mid-grey regions: 128 px",
    ):
        ingest(root, non_binary_masks="error")
    with pytest.raises(ValueError, match="non_binary_masks is 'ignore'"):
        ingest(root, non_binary_masks="ignore")


def test_file_names_with_spaces_and_unicode_are_ingested(tmp_path: Path) -> None:
    stem = "Polyp 12 – café (ß)"
    summary = ingest(folder_dataset(tmp_path, stem, frame(), ".jpg"))
    assert stem in summary["id"].tolist()


@pytest.mark.parametrize(
    "listed", ["../../etc/passwd", "/etc/passwd", "images/../../x", "a\\..\\..\\b"]
)
def test_listed_ids_that_would_leave_the_data_folder_are_refused(
    tmp_path: Path, listed: str
) -> None:
    id_list = tmp_path / "train.txt"
    id_list.write_text(f"good\n{listed}\n", encoding="utf-8")

    with pytest.raises(SplitError, match=r"paths that leave the dataset folder, not sample ids"):
        split_from_id_lists(["good"], {"train": read_id_list(id_list)})


def test_pranet_style_ids_with_a_test_set_prefix_are_still_ids() -> None:
    assignment = split_from_id_lists(
        ["CVC-300/149", "a"], {"test": ["CVC-300/149"], "train": ["a"]}
    )
    assert assignment == {
        "CVC-300/149": {"split": "test", "subset": "test"},
        "a": {"split": "train", "subset": "train"},
    }


# --- property: any files at all give a result or one of our documented errors -----------------

MODES = ["1", "L", "LA", "P", "RGB", "RGBA", "I;16", "I", "F", "CMYK"]
NAMES = st.text(
    alphabet=st.characters(categories=["L", "N", "Zs"], include_characters="-_().'"),
    min_size=1,
    max_size=12,
).filter(lambda name: not name.startswith(".") and name.strip())
Content = bytes | tuple[str, int, int, int]  # random bytes, or an image: mode, height, width, seed


@st.composite
def sample_files(draw) -> tuple[str, str, Content, str, Content | None]:
    """One sample: stem, image suffix and content, mask suffix and content (None: no mask)."""
    height, width = draw(st.integers(1, 20)), draw(st.integers(1, 20))

    def content() -> Content:
        if draw(st.integers(0, 5)) == 0:
            return draw(st.binary(max_size=300))
        same_size = draw(st.integers(0, 5)) > 0
        size = (
            (height, width) if same_size else (draw(st.integers(1, 20)), draw(st.integers(1, 20)))
        )
        return (draw(st.sampled_from(MODES)), *size, draw(st.integers(0, 2**16)))

    suffixes = st.sampled_from(sorted(IMAGE_SUFFIXES))
    image_suffix, image = draw(suffixes), content()
    mask_suffix, mask = draw(suffixes), content() if draw(st.integers(0, 15)) else None
    return draw(NAMES), image_suffix, image, mask_suffix, mask


def write_random_file(path: Path, content: Content) -> None:
    if isinstance(content, bytes):
        path.write_bytes(content)
        return
    mode, height, width, seed = content
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    try:
        Image.fromarray(pixels).convert(mode).save(path)
    except (OSError, ValueError, KeyError):  # a mode this format cannot store: write its bytes
        path.write_bytes(pixels.tobytes())


DOCUMENTED_ERRORS = (DatasetLayoutError, DatasetValidationError)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(samples=st.lists(sample_files(), min_size=1, max_size=3))
def test_random_files_give_a_summary_or_a_documented_error(samples: list) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "images").mkdir()
        (root / "masks").mkdir()
        (root / "images" / "notes.txt").write_text("not a frame")  # ignored: not an image
        for stem, image_suffix, image, mask_suffix, mask in samples:
            write_random_file(root / "images" / f"{stem}{image_suffix}", image)
            if mask is not None:
                write_random_file(root / "masks" / f"{stem}{mask_suffix}", mask)
        try:
            summary = ingest(root)
        except DOCUMENTED_ERRORS as error:
            event(type(error).__name__)
            assert str(error)  # a message listing the problems
            return
        event("ingested")
        assert len(summary) >= 1
        assert summary["foreground_fraction"].between(0, 1).all()
