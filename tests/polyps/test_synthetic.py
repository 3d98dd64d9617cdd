from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from ssformer_repro.polyps import synthetic
from ssformer_repro.polyps.io import read_mask, read_rgb
from ssformer_repro.polyps.layouts import discover_pairs
from ssformer_repro.polyps.synthetic import generate_synthetic_polyps, write_synthetic_dataset

SMALL = {"min_size": 40, "max_size": 64}


def _file_bytes(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in root.rglob("*")
        if path.is_file()
    }


def test_same_seed_gives_identical_samples_and_other_seeds_differ() -> None:
    first = generate_synthetic_polyps(4, seed=5, **SMALL)
    again = generate_synthetic_polyps(4, seed=5, **SMALL)
    other = generate_synthetic_polyps(4, seed=6, **SMALL)

    assert [sample_id for sample_id, _, _ in first] == [
        "synth_0000",
        "synth_0001",
        "synth_0002",
        "synth_0003",
    ]
    for (_, frame, mask), (_, frame_again, mask_again) in zip(first, again, strict=True):
        assert np.array_equal(frame, frame_again) and np.array_equal(mask, mask_again)
    for (_, frame, _), (_, other_frame, _) in zip(first, other, strict=True):
        assert frame.shape != other_frame.shape or not np.array_equal(frame, other_frame)


def test_image_i_does_not_depend_on_how_many_are_generated() -> None:
    few = generate_synthetic_polyps(2, seed=0, **SMALL)
    more = generate_synthetic_polyps(5, seed=0, **SMALL)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(few, more[:2], strict=True))


def test_samples_have_varying_sizes_binary_non_empty_masks_and_few_polyps() -> None:
    samples = generate_synthetic_polyps(12, seed=1, min_size=40, max_size=64, max_polyps=2)

    shapes = {frame.shape for _, frame, _ in samples}
    assert len(shapes) > 6
    for _, frame, mask in samples:
        assert frame.dtype == mask.dtype == np.uint8
        assert frame.ndim == 3 and frame.shape[2] == 3 and mask.shape == frame.shape[:2]
        assert 40 <= frame.shape[0] <= 64 and 40 <= frame.shape[1] <= 64
        assert set(np.unique(mask)) == {0, 255}
        n_blobs = cv2.connectedComponents(mask)[0] - 1
        assert 1 <= n_blobs <= 2
        assert 0.002 < (mask > 0).mean() < 0.5


def test_frames_look_like_endoscopy_with_visible_but_subtle_polyps() -> None:
    samples = generate_synthetic_polyps(8, seed=2, **SMALL)
    frames = np.concatenate([frame.reshape(-1, 3) for _, frame, _ in samples]).astype(float)
    red, green, blue = frames.mean(axis=0)
    assert red > green + 30 and red > blue + 30  # reddish mucosa
    for _, frame, mask in samples:
        corner = frame[:4, :4].mean()
        centre = frame[frame.shape[0] // 2 - 2 : frame.shape[0] // 2 + 2].mean()
        assert corner < centre  # vignetting
        ring = cv2.dilate(mask, np.ones((7, 7), np.uint8)) - mask
        contrast = frame[mask > 0].mean() - frame[ring > 0].mean()
        assert 3 < contrast < 80  # polyp distinguishable from its surroundings, not a flat paste


def test_written_kvasir_layout_is_rediscovered_with_noisy_jpeg_masks(tmp_path: Path) -> None:
    samples = generate_synthetic_polyps(3, seed=0, **SMALL)
    root = tmp_path / "synthetic_kvasir"

    write_synthetic_dataset(samples, root, "kvasir", generator_parameters={"seed": 0})

    pairs = discover_pairs("kvasir", root)
    assert [pair.id for pair in pairs] == [sample_id for sample_id, _, _ in samples]
    for pair, (_, frame, mask) in zip(pairs, samples, strict=True):
        assert np.abs(read_rgb(pair.image_path).astype(int) - frame).mean() < 6
        assert (read_mask(pair.mask_path) == (mask > 0)).mean() > 0.97
    marker = json.loads((root / "SYNTHETIC.json").read_text())
    assert marker["generator_parameters"] == {"seed": 0} and marker["layout"] == "kvasir"


def test_written_clinicdb_layout_is_rediscovered_losslessly(tmp_path: Path) -> None:
    samples = generate_synthetic_polyps(3, seed=0, **SMALL)
    root = tmp_path / "synthetic clinicdb"

    write_synthetic_dataset(samples, root, "clinicdb")

    pairs = discover_pairs("clinicdb", root)
    assert [pair.id for pair in pairs] == ["1", "2", "3"]
    assert pairs[0].mask_path.endswith("Ground Truth/1.tif")
    for pair, (_, frame, mask) in zip(pairs, samples, strict=True):
        assert np.array_equal(read_rgb(pair.image_path), frame)
        assert np.array_equal(read_mask(pair.mask_path), mask > 0)


def test_regenerating_over_our_own_dataset_is_byte_identical(tmp_path: Path) -> None:
    root = tmp_path / "synthetic"
    write_synthetic_dataset(generate_synthetic_polyps(2, seed=0, **SMALL), root, "kvasir")
    first = _file_bytes(root)

    write_synthetic_dataset(generate_synthetic_polyps(2, seed=0, **SMALL), root, "kvasir")

    assert _file_bytes(root) == first
    assert [path.name for path in tmp_path.iterdir()] == ["synthetic"]


def test_writing_into_an_empty_folder_is_allowed(tmp_path: Path) -> None:
    write_synthetic_dataset(generate_synthetic_polyps(1, seed=0, **SMALL), tmp_path, "clinicdb")
    assert (tmp_path / "Original" / "1.tif").is_file()


@pytest.mark.parametrize("marker", [None, "{broken", '{"generator": "someone else"}'])
def test_refuses_to_overwrite_a_foreign_non_empty_folder(
    tmp_path: Path, marker: str | None
) -> None:
    (tmp_path / "precious.jpg").write_bytes(b"real data")
    if marker is not None:
        (tmp_path / "SYNTHETIC.json").write_text(marker)

    with pytest.raises(FileExistsError, match=rf"{tmp_path} is not empty.*refusing to overwrite"):
        write_synthetic_dataset(generate_synthetic_polyps(1, seed=0, **SMALL), tmp_path, "kvasir")

    assert (tmp_path / "precious.jpg").read_bytes() == b"real data"


def test_a_crash_while_writing_leaves_no_half_dataset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    samples = generate_synthetic_polyps(2, seed=0, **SMALL)
    root = tmp_path / "synthetic"
    write_synthetic_dataset(samples, root, "kvasir")
    before = _file_bytes(root)

    def crash_after_one_file(samples, folder: Path, jpeg_quality: int) -> None:
        (folder / "images").mkdir()
        (folder / "images" / "synth_0000.jpg").write_bytes(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setitem(synthetic.SYNTHETIC_WRITERS, "kvasir", crash_after_one_file)
    with pytest.raises(KeyboardInterrupt):
        write_synthetic_dataset(samples, root, "kvasir")

    assert _file_bytes(root) == before
    assert [path.name for path in tmp_path.iterdir()] == ["synthetic"]


def test_unknown_layout_and_bad_sizes_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"valid: \['clinicdb', 'kvasir', 'pranet'\]"):
        write_synthetic_dataset([], tmp_path / "x", "folder")
    with pytest.raises(ValueError, match="needs test sets of at least one image each"):
        write_synthetic_dataset([], tmp_path / "x", "pranet")
    with pytest.raises(ValueError, match="min_size <= max_size"):
        generate_synthetic_polyps(1, seed=0, min_size=64, max_size=40)
