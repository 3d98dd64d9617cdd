"""Tests for the SSFormer augmentation pipeline (albumentations)."""

from __future__ import annotations

import albumentations as A
import numpy as np
import pytest
import torch
from PIL import Image, ImageEnhance

from ssformer_repro.polyps.augment import (
    DEFAULT_AUGMENTATION,
    RandomDilationErosion,
    RandomImageEnhance,
    build_eval_transform,
    build_train_transform,
)
from ssformer_repro.polyps.settings import AugmentationSettings

SIZE = 32
MEAN = np.array(DEFAULT_AUGMENTATION["normalize"]["mean"], dtype=np.float32)
STD = np.array(DEFAULT_AUGMENTATION["normalize"]["std"], dtype=np.float32)


def no_random_config(**overrides: dict) -> AugmentationSettings:
    """An augmentation config with every random step switched off, plus ``overrides``."""
    config = {
        "image_size": SIZE,
        "scale_crop": {"p": 0.0},
        "flip": {"horizontal_p": 0.0, "vertical_p": 0.0},
        "rotate": {"p": 0.0},
        "enhance": {"p": 0.0},
        "dilation_erosion": {"dilate_p": 0.0, "erode_p": 0.0},
    }
    for key, value in overrides.items():
        config[key] = {**config.get(key, {}), **value}
    return AugmentationSettings.model_validate(config)


def asymmetric_pair(height: int = SIZE, width: int = SIZE) -> tuple[np.ndarray, np.ndarray]:
    """An RGB image whose channels vary along x, y and both, and an L-shaped 0/1 mask."""
    rows, columns = np.mgrid[0:height, 0:width]
    image = np.stack(
        [columns * 255 // (width - 1), rows * 255 // (height - 1), (rows + 2 * columns) % 256],
        axis=-1,
    ).astype(np.uint8)
    mask = np.zeros((height, width), dtype=np.uint8)
    mask[2 : height // 2, 3:7] = 1
    mask[height // 2 - 4 : height // 2, 3 : width // 2 + 5] = 1
    return image, mask


def denormalise(image: torch.Tensor) -> np.ndarray:
    """(3, H, W) normalised tensor back to (H, W, 3) pixel values 0..255."""
    return (image.permute(1, 2, 0).numpy() * STD + MEAN) * 255.0


def random_pair(rng: np.random.Generator, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    mask = np.zeros((height, width), dtype=np.uint8)
    mask[height // 4 : 3 * height // 4, width // 3 : 2 * width // 3] = 1
    return image, mask


def test_default_config_has_the_official_values():
    assert DEFAULT_AUGMENTATION == {
        "image_size": 352,
        "scale_crop": {"p": 0.5, "scale": [0.75, 1.25]},
        "flip": {"horizontal_p": 0.5, "vertical_p": 0.5},
        "rotate": {"p": 0.5, "angle": [0, 359]},
        "enhance": {"p": 0.5, "max_delta": 0.1},
        "dilation_erosion": {"kernel_size": [2, 4], "dilate_p": 0.3333, "erode_p": 0.3333},
        "normalize": {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
    }


def test_partial_config_keeps_the_other_defaults():
    resolved = AugmentationSettings.model_validate({"image_size": 64, "flip": {"vertical_p": 0.0}})
    assert resolved.image_size == 64
    assert resolved.flip.model_dump() == {"horizontal_p": 0.5, "vertical_p": 0.0}
    assert resolved.rotate.model_dump() == DEFAULT_AUGMENTATION["rotate"]
    assert DEFAULT_AUGMENTATION["flip"]["vertical_p"] == 0.5  # defaults not mutated


@pytest.mark.parametrize(("flip", "axis"), [("horizontal_p", 1), ("vertical_p", 0)])
def test_flip_flips_image_and_mask_together(flip, axis):
    image, mask = asymmetric_pair()
    transform = build_train_transform(no_random_config(flip={flip: 1.0}), seed=0)

    result = transform(image=image, mask=mask)

    np.testing.assert_array_equal(result["mask"].numpy(), np.flip(mask, axis=axis))
    np.testing.assert_allclose(denormalise(result["image"]), np.flip(image, axis=axis), atol=1e-3)


def test_rotation_by_90_degrees_rotates_image_and_mask_together():
    image, mask = asymmetric_pair()
    transform = build_train_transform(no_random_config(rotate={"p": 1.0, "angle": [90, 90]}))

    result = transform(image=image, mask=mask)

    np.testing.assert_array_equal(result["mask"].numpy(), np.rot90(mask))
    np.testing.assert_allclose(denormalise(result["image"]), np.rot90(image), atol=1.0)


def test_scale_crop_zooms_about_the_centre_and_pads_with_zeros():
    image = np.full((SIZE, SIZE, 3), 200, dtype=np.uint8)
    mask = np.ones((SIZE, SIZE), dtype=np.uint8)
    transform = build_train_transform(no_random_config(scale_crop={"p": 1.0, "scale": [0.5, 0.5]}))

    result = transform(image=image, mask=mask)

    kept = result["mask"].numpy()
    assert kept.sum() == pytest.approx(SIZE * SIZE / 4, rel=0.15)
    assert kept[SIZE // 2, SIZE // 2] == 1 and kept[0, 0] == 0 and kept[-1, -1] == 0
    np.testing.assert_allclose(denormalise(result["image"])[0, 0], 0.0, atol=1e-3)


def test_mask_stays_binary_through_the_full_pipeline():
    rng = np.random.default_rng(0)
    for seed in range(40):
        image, mask = random_pair(rng, height=48, width=40)
        result = build_train_transform(AugmentationSettings(image_size=SIZE), seed=seed)(
            image=image, mask=mask
        )
        assert set(np.unique(result["mask"].numpy())) <= {0, 1}


def test_outputs_have_the_expected_types_shapes_and_normalisation():
    value = np.array([10, 128, 250], dtype=np.uint8)
    image = np.broadcast_to(value, (40, 56, 3)).copy()
    mask = np.zeros((40, 56), dtype=np.uint8)

    result = build_train_transform(no_random_config())(image=image, mask=mask)

    assert result["image"].dtype == torch.float32
    assert result["image"].shape == (3, SIZE, SIZE)
    assert result["mask"].shape == (SIZE, SIZE)
    expected = (value / 255.0 - MEAN) / STD
    np.testing.assert_allclose(result["image"].mean(dim=(1, 2)).numpy(), expected, atol=1e-5)


def test_full_pipeline_with_a_seed_is_reproducible():
    rng = np.random.default_rng(1)
    pairs = [random_pair(rng, height=40, width=48) for _ in range(6)]

    def run(seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
        transform = build_train_transform(AugmentationSettings(image_size=SIZE), seed=seed)
        return [
            (out["image"].numpy(), out["mask"].numpy())
            for out in (transform(image=image, mask=mask) for image, mask in pairs)
        ]

    first, again, other = run(7), run(7), run(8)
    for (image_a, mask_a), (image_b, mask_b) in zip(first, again, strict=True):
        np.testing.assert_array_equal(image_a, image_b)
        np.testing.assert_array_equal(mask_a, mask_b)
    assert any(not np.array_equal(a[0], b[0]) for a, b in zip(first, other, strict=True))


def test_seeded_flips_are_drawn_independently():
    # A.Compose(seed=...) alone would give both flips the same stream and the same decisions.
    image, mask = asymmetric_pair()
    transform = build_train_transform(no_random_config(), seed=3)
    horizontal, vertical = (
        next(step for step in transform if isinstance(step, kind))
        for kind in (A.HorizontalFlip, A.VerticalFlip)
    )
    horizontal.p = vertical.p = 0.5
    decisions = []
    for _ in range(200):
        transform(image=image, mask=mask)
        decisions.append((bool(horizontal.params), bool(vertical.params)))

    both_or_neither = sum(h == v for h, v in decisions)
    assert 60 < both_or_neither < 140
    assert 60 < sum(h for h, _ in decisions) < 140


def test_eval_transform_resizes_and_normalises_the_image_only():
    image, _ = asymmetric_pair(height=50, width=70)
    result = build_eval_transform(AugmentationSettings(image_size=SIZE))(image=image)
    assert result["image"].shape == (3, SIZE, SIZE)
    assert result["image"].dtype == torch.float32


def enhance_only(**kwargs: float) -> A.Compose:
    return A.Compose([RandomImageEnhance(**kwargs)], seed=0, save_applied_params=True)


def test_image_enhance_leaves_the_mask_untouched_and_matches_pil():
    rng = np.random.default_rng(2)
    image, mask = random_pair(rng, height=SIZE, width=SIZE)
    transform = enhance_only(operation_p=1.0, max_delta=0.1)

    result = transform(image=image, mask=mask)

    np.testing.assert_array_equal(result["mask"], mask)
    [(_, params)] = result["applied_transforms"]
    expected = Image.fromarray(image)
    enhancers = {
        "contrast": ImageEnhance.Contrast,
        "sharpness": ImageEnhance.Sharpness,
        "brightness": ImageEnhance.Brightness,
    }
    for name, factor in params["enhancements"]:
        expected = enhancers[name](expected).enhance(factor)
    np.testing.assert_array_equal(result["image"], np.asarray(expected))
    assert not np.array_equal(result["image"], image)


def test_image_enhance_draws_shuffled_operations_with_bounded_factors():
    transform = RandomImageEnhance(operation_p=1.0, max_delta=0.1)
    transform.set_random_seed(0)
    orders = set()
    for _ in range(200):
        enhancements = transform.get_params()["enhancements"]
        names = [name for name, _ in enhancements]
        assert sorted(names) == ["brightness", "contrast", "sharpness"]
        assert all(1.0 <= factor < 1.1 for _, factor in enhancements)
        orders.add(tuple(names))
    assert len(orders) == 6


def test_image_enhance_applies_each_operation_with_its_probability():
    transform = RandomImageEnhance(operation_p=0.5, max_delta=0.1)
    transform.set_random_seed(0)
    counts = [len(transform.get_params()["enhancements"]) for _ in range(600)]
    assert np.mean(counts) == pytest.approx(1.5, abs=0.15)

    transform = RandomImageEnhance(operation_p=0.0, max_delta=0.1)
    assert transform.get_params()["enhancements"] == []


def test_image_enhance_rejects_a_float_image():
    transform = RandomImageEnhance(operation_p=1.0)
    with pytest.raises(TypeError, match="uint8"):
        transform(image=np.zeros((8, 8, 3), dtype=np.float32))


@pytest.mark.parametrize(("operation", "grows"), [("dilate", True), ("erode", False)])
def test_dilation_erosion_changes_only_the_mask(operation, grows):
    rng = np.random.default_rng(3)
    image, mask = random_pair(rng, height=SIZE, width=SIZE)
    probabilities = {"dilate_p": 1.0, "erode_p": 0.0}
    if operation == "erode":
        probabilities = {"dilate_p": 0.0, "erode_p": 1.0}
    transform = A.Compose([RandomDilationErosion(kernel_size=(3, 3), **probabilities)], seed=0)

    result = transform(image=image, mask=mask)

    assert result["image"].tobytes() == image.tobytes()
    changed = result["mask"]
    assert set(np.unique(changed)) <= {0, 1}
    if grows:
        assert changed.sum() > mask.sum() and np.all(changed >= mask)
    else:
        assert changed.sum() < mask.sum() and np.all(changed <= mask)


def test_dilation_erosion_draws_kernel_sizes_and_operations_as_configured():
    transform = RandomDilationErosion(kernel_size=(2, 4), dilate_p=1 / 3, erode_p=1 / 3)
    transform.set_random_seed(0)
    draws = [transform.get_params() for _ in range(900)]
    assert {draw["morphology_kernel_size"] for draw in draws} == {2, 3, 4}
    for operation in ("dilate", "erode", None):
        share = sum(draw["operation"] == operation for draw in draws) / len(draws)
        assert share == pytest.approx(1 / 3, abs=0.06)


def test_dilation_erosion_with_zero_probabilities_keeps_the_mask():
    rng = np.random.default_rng(4)
    image, mask = random_pair(rng, height=SIZE, width=SIZE)
    transform = A.Compose([RandomDilationErosion(dilate_p=0.0, erode_p=0.0)], seed=0)
    np.testing.assert_array_equal(transform(image=image, mask=mask)["mask"], mask)


@pytest.mark.parametrize(
    "kwargs",
    [{"dilate_p": 0.7, "erode_p": 0.5}, {"kernel_size": (4, 2)}, {"kernel_size": (0, 3)}],
)
def test_dilation_erosion_rejects_bad_settings(kwargs):
    with pytest.raises(ValueError):
        RandomDilationErosion(**kwargs)
