from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageFile

from ssformer_repro.polyps.io import (
    ImageReadError,
    image_size,
    read_mask,
    read_rgb,
)
from tests.polyps.conftest import (
    ellipse_mask,
    noise_rgb,
    random_rgb,
    truncate,
    write_image,
    write_mask,
)


def test_read_rgb_keeps_rgb_pixels_of_lossless_files(tmp_path: Path) -> None:
    pixels = random_rgb(32, 48)
    for name in ("frame.png", "frame.tif", "frame.bmp"):
        assert np.array_equal(read_rgb(write_image(tmp_path / name, pixels)), pixels)


def test_read_rgb_decodes_jpeg_close_to_original(tmp_path: Path) -> None:
    pixels = random_rgb(32, 48)
    frame = read_rgb(write_image(tmp_path / "frame.jpg", pixels, quality=95))
    assert frame.shape == (32, 48, 3) and frame.dtype == np.uint8
    assert np.abs(frame.astype(int) - pixels).mean() < 3


def test_read_rgb_converts_grey_rgba_palette_and_cmyk(tmp_path: Path) -> None:
    pixels = random_rgb(32, 48)
    grey = write_image(tmp_path / "grey.png", pixels[..., 0])
    rgba = tmp_path / "rgba.png"
    Image.fromarray(np.dstack([pixels, np.zeros((32, 48), np.uint8)])).save(rgba)
    palette = tmp_path / "palette.png"
    palette_image = Image.fromarray(pixels).quantize(colors=16)
    palette_image.save(palette)
    cmyk = tmp_path / "cmyk.jpg"
    Image.fromarray(pixels).convert("CMYK").save(cmyk, quality=95)

    assert np.array_equal(read_rgb(grey), np.repeat(pixels[..., :1], 3, axis=2))
    assert np.array_equal(read_rgb(rgba), pixels)  # alpha 0 everywhere is dropped, not applied
    assert np.array_equal(read_rgb(palette), np.array(palette_image.convert("RGB")))
    cmyk_frame = read_rgb(cmyk)
    assert cmyk_frame.shape == (32, 48, 3)
    assert np.abs(cmyk_frame.astype(int) - pixels).mean() < 6


def test_read_rgb_and_read_mask_scale_16_bit_to_8_bit(tmp_path: Path) -> None:
    values = np.array([[0, 256 * 100, 65535]], dtype=np.uint16)
    path = write_image(tmp_path / "deep.png", values)
    assert Image.open(path).mode == "I;16"
    assert read_rgb(path)[0, :, 0].tolist() == [0, 100, 255]
    assert read_mask(path).tolist() == [[False, False, True]]


def test_tiff_that_pillow_cannot_read_falls_back_to_tifffile(tmp_path: Path) -> None:
    grey = np.array([[0, 256 * 100, 65535]], dtype=np.uint16)
    path = tmp_path / "grey_alpha_16bit.tif"
    tifffile.imwrite(path, np.dstack([grey, grey]), photometric="minisblack", extrasamples=[2])
    with pytest.raises(OSError):
        Image.open(path)  # Pillow has no 16-bit grey + alpha mode
    assert read_rgb(path)[0].tolist() == [[0, 0, 0], [100, 100, 100], [255, 255, 255]]
    assert read_mask(path).tolist() == [[False, False, True]]


def test_tiff_with_float_pixels_raises_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "float.tif"
    tifffile.imwrite(path, np.zeros((8, 8, 3), np.float32), photometric="rgb")
    with pytest.raises(ImageReadError, match=r"float\.tif.*unsupported TIFF pixel format float32"):
        read_rgb(path)


def test_read_mask_binarises_kvasir_like_noise_exactly(tmp_path: Path) -> None:
    truth = ellipse_mask(32, 48)
    rng = np.random.default_rng(0)
    noisy = np.where(truth, rng.integers(248, 256, truth.shape), rng.integers(0, 8, truth.shape))
    path = write_image(tmp_path / "noisy.png", noisy.astype(np.uint8))
    assert np.array_equal(read_mask(path), truth)


def test_read_mask_keeps_jpeg_mask_edges_that_exact_255_matching_loses(tmp_path: Path) -> None:
    truth = ellipse_mask(64, 64)
    path = write_mask(tmp_path / "mask.jpg", truth, quality=75)
    grey = np.array(Image.open(path))
    mask = read_mask(path)
    assert mask.dtype == bool and mask.shape == (64, 64)
    assert (mask == truth).mean() > 0.99
    assert (grey == 255).sum() < 0.95 * truth.sum()


def test_read_mask_converts_rgb_masks_and_respects_threshold(tmp_path: Path) -> None:
    grey = np.array([[0, 100, 200]], dtype=np.uint8)
    path = write_image(tmp_path / "rgb_mask.png", np.repeat(grey[..., None], 3, axis=2))
    assert read_mask(path).tolist() == [[False, False, True]]
    assert read_mask(path, threshold=50).tolist() == [[False, True, True]]


def test_image_size_reads_the_header_only(tmp_path: Path) -> None:
    path = truncate(write_image(tmp_path / "frame.jpg", noise_rgb(400, 560)))
    assert image_size(path) == (400, 560)
    with pytest.raises(ImageReadError):
        read_rgb(path)


@pytest.mark.parametrize("name", ["cut.jpg", "cut.png", "cut.tif"])
def test_truncated_files_raise_image_read_error_naming_the_file(tmp_path: Path, name: str) -> None:
    path = truncate(write_image(tmp_path / name, noise_rgb(64, 64)))
    with pytest.raises(ImageReadError, match=rf"{name}.*(truncated|corrupt)"):
        read_rgb(path)
    with pytest.raises(ImageReadError, match=name):
        read_mask(path)


def test_non_image_and_missing_files_raise_image_read_error(tmp_path: Path) -> None:
    fake = tmp_path / "notes.png"
    fake.write_text("not an image")
    with pytest.raises(ImageReadError, match=r"notes\.png.*not an image"):
        read_rgb(fake)
    with pytest.raises(ImageReadError, match=r"absent\.jpg.*not found"):
        read_mask(tmp_path / "absent.jpg")


@pytest.mark.parametrize("side", [12, 20])  # 144 pixels: bomb warning; 400: bomb error
def test_decompression_bombs_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, side: int
) -> None:
    path = write_image(tmp_path / "bomb.png", random_rgb(side, side))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(ImageReadError, match=r"bomb\.png.*refused"):
        read_rgb(path)
    with pytest.raises(ImageReadError, match=r"bomb\.png.*refused"):
        image_size(path)


def test_pillow_safety_settings_are_untouched() -> None:
    assert Image.MAX_IMAGE_PIXELS == int(1024 * 1024 * 1024 // 4 // 3)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
