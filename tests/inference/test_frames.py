"""Frames to segment: found under nested folders, and every kind of bad file kept with a reason."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ssformer_repro.inference.frames import FrameDataset, collate_frames, find_frames
from ssformer_repro.polyps.augment import build_eval_transform
from ssformer_repro.polyps.settings import AugmentationSettings

TRANSFORM = build_eval_transform(AugmentationSettings(image_size=32))


def frame(size: tuple[int, int] = (40, 56), seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)


def write_frames(folder: Path) -> dict[str, Path]:
    """One file of every kind predict meets, under nested folders."""
    (folder / "seq1").mkdir(parents=True)
    (folder / ".cache").mkdir()
    paths = {
        "rgb": folder / "seq1" / "frame_001.jpg",
        "png": folder / "seq1" / "frame_002.png",
        "tif": folder / "frame_003.tif",
        "bmp": folder / "frame_004.bmp",
        "grey": folder / "grey.png",
        "sixteen": folder / "sixteen.png",
        "rgba": folder / "rgba.png",
        "palette": folder / "palette.png",
        "empty": folder / "empty.jpg",
        "truncated": folder / "truncated.jpg",
        "text": folder / "notes.png",
        "other": folder / "readme.txt",
    }
    Image.fromarray(frame()).save(paths["rgb"])
    Image.fromarray(frame(seed=1)).save(paths["png"])
    Image.fromarray(frame(seed=2)).save(paths["tif"])
    Image.fromarray(frame(seed=3)).save(paths["bmp"])
    Image.fromarray(frame()[..., 0]).save(paths["grey"])
    Image.fromarray(np.arange(40 * 56, dtype=np.uint16).reshape(40, 56) * 29).save(paths["sixteen"])
    Image.fromarray(np.dstack([frame(), np.full((40, 56), 255, np.uint8)])).save(paths["rgba"])
    Image.fromarray(frame()).convert("P").save(paths["palette"])
    paths["empty"].write_bytes(b"")
    paths["truncated"].write_bytes(paths["rgb"].read_bytes()[:200])
    paths["text"].write_text("not an image")
    paths["other"].write_text("notes")
    (folder / ".cache" / "hidden.png").write_bytes(paths["png"].read_bytes())
    return paths


def test_frames_are_found_in_nested_folders_with_ids_from_their_paths(tmp_path: Path) -> None:
    write_frames(tmp_path)
    frames = find_frames(tmp_path)
    assert "seq1/frame_001" in set(frames["id"])
    assert not any(".cache" in source for source in frames["source"])  # hidden: left alone
    other = frames.set_index("id").loc["readme", "status"]
    assert other.startswith("skipped: not an image file (.bmp, .jpeg, .jpg, .png, .tif, .tiff)")
    assert list(frames["source"]) == sorted(frames["source"])


def test_two_files_that_differ_by_suffix_alone_keep_it_in_their_ids(tmp_path: Path) -> None:
    Image.fromarray(frame()).save(tmp_path / "a.jpg")
    Image.fromarray(frame()).save(tmp_path / "a.png")
    Image.fromarray(frame()).save(tmp_path / "b.png")
    assert list(find_frames(tmp_path)["id"]) == ["a.jpg", "a.png", "b"]


def test_an_empty_or_missing_input_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="holds no files"):
        find_frames(tmp_path)
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        find_frames(tmp_path / "missing")


def test_each_bad_file_is_converted_or_skipped_with_its_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = write_frames(tmp_path)
    huge = tmp_path / "huge.png"
    Image.fromarray(frame((64, 64))).save(huge)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 3000)  # past the guard: 64 x 64, not 40 x 56
    frames = find_frames(tmp_path)
    dataset = FrameDataset(frames, TRANSFORM)
    items = {item["source"]: item for item in (dataset[i] for i in range(len(dataset)))}
    status = {name: items[str(path)]["status"] for name, path in paths.items()}

    assert status["rgb"] == status["png"] == status["tif"] == status["bmp"] == "ok"
    assert status["grey"] == "ok (converted from L to RGB)"
    assert status["sixteen"].startswith("ok (converted from I")
    assert status["rgba"] == "ok (converted from RGBA to RGB)"
    assert status["palette"] == "ok (converted from P to RGB)"
    assert status["empty"] == "skipped: empty file (0 bytes)"
    assert status["truncated"].startswith("skipped: cannot decode image")
    assert status["text"].startswith("skipped: cannot decode image")
    assert status["other"].startswith("skipped: not an image file")
    assert items[str(huge)]["status"].startswith("skipped: refused to decode")
    read = items[str(paths["grey"])]
    assert tuple(read["image"].shape) == (3, 32, 32) and read["size"] == (40, 56)


def test_a_batch_keeps_its_skipped_files_apart(tmp_path: Path) -> None:
    paths = write_frames(tmp_path)
    frames = find_frames(tmp_path)
    dataset = FrameDataset(frames, TRANSFORM)
    batch = collate_frames([dataset[i] for i in range(len(dataset))])
    skipped = {row["source"] for row in batch["skipped"]}
    assert skipped == {str(paths[name]) for name in ("empty", "truncated", "text", "other")}
    assert batch["image"].shape[0] == len(batch["id"]) == len(frames) - len(skipped)
    only_bad = collate_frames([dataset[list(frames["source"]).index(str(paths["empty"]))]])
    assert only_bad["image"] is None and len(only_bad["skipped"]) == 1
