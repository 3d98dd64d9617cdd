"""Training and evaluation transforms: the official SSFormer augmentation order, in albumentations.

The official training order (docs/reference.md §3.1) is resize, random scale-crop, horizontal and
vertical flips, rotation, random image enhancement, random dilation/erosion of the mask, then
ImageNet normalisation. Unlike the official code, the mask is resized and warped with nearest
neighbour interpolation so that it stays binary (0/1) throughout.
"""

from __future__ import annotations

import random
from typing import Any

import albumentations as A
import cv2
import numpy as np
from albumentations.core.transforms_interface import BaseTransformInitSchema
from albumentations.pytorch import ToTensorV2
from PIL import Image, ImageEnhance
from pydantic import Field, model_validator
from typing_extensions import Self

from ssformer_repro.polyps.settings import AugmentationSettings

# The official values (docs/reference.md §3.1): the schema's defaults.
OFFICIAL_AUGMENTATION = AugmentationSettings()
DEFAULT_AUGMENTATION: dict[str, Any] = OFFICIAL_AUGMENTATION.model_dump(mode="json")

PIL_ENHANCERS: dict[str, type] = {
    "contrast": ImageEnhance.Contrast,
    "sharpness": ImageEnhance.Sharpness,
    "brightness": ImageEnhance.Brightness,
}

MASK_MORPHOLOGY = {"dilate": cv2.dilate, "erode": cv2.erode}


class RandomImageEnhance(A.ImageOnlyTransform):
    """Apply PIL contrast, sharpness and brightness enhancement in a random order (official SSFormer).

    Each operation is applied with probability ``operation_p`` and factor ``1 + U[0, max_delta)``.
    The image must be uint8; the mask is never touched.
    """

    class InitSchema(BaseTransformInitSchema):
        operation_p: float = Field(ge=0, le=1)
        max_delta: float = Field(ge=0)

    def __init__(self, operation_p: float = 0.5, max_delta: float = 0.1, p: float = 1.0):
        super().__init__(p=p)
        self.operation_p = operation_p
        self.max_delta = max_delta

    def get_params(self) -> dict[str, Any]:
        """Draw the operation order, which operations run, and their factors."""
        order = self.py_random.sample(list(PIL_ENHANCERS), k=len(PIL_ENHANCERS))
        enhancements = []
        for name in order:
            if self.py_random.random() < self.operation_p:
                enhancements.append((name, 1.0 + self.py_random.uniform(0.0, self.max_delta)))
        return {"enhancements": enhancements}

    def apply(
        self, img: np.ndarray, enhancements: list[tuple[str, float]], **params: Any
    ) -> np.ndarray:
        """Enhance the uint8 image with PIL, one operation after another."""
        if img.dtype != np.uint8:
            raise TypeError(
                f"RandomImageEnhance needs a uint8 image (PIL ImageEnhance), got {img.dtype}; "
                "place it before Normalize."
            )
        pil_image = Image.fromarray(img)
        for name, factor in enhancements:
            pil_image = PIL_ENHANCERS[name](pil_image).enhance(factor)
        return np.asarray(pil_image)

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("operation_p", "max_delta")


class RandomDilationErosion(A.DualTransform):
    """Dilate or erode the mask with a random elliptical kernel (official SSFormer); image untouched.

    A kernel size is drawn from ``kernel_size`` (inclusive); the mask is dilated with probability
    ``dilate_p``, eroded with probability ``erode_p`` and otherwise left unchanged.
    """

    class InitSchema(BaseTransformInitSchema):
        kernel_size: tuple[int, int]
        dilate_p: float = Field(ge=0, le=1)
        erode_p: float = Field(ge=0, le=1)

        @model_validator(mode="after")
        def _check_ranges(self) -> Self:
            low, high = self.kernel_size
            if not 1 <= low <= high:
                raise ValueError(
                    f"kernel_size must be [low, high] with 1 <= low <= high, got {self.kernel_size}"
                )
            if self.dilate_p + self.erode_p > 1:
                raise ValueError(
                    f"dilate_p + erode_p must be <= 1, got {self.dilate_p} + {self.erode_p}"
                )
            return self

    def __init__(
        self,
        kernel_size: tuple[int, int] = (2, 4),
        dilate_p: float = 1 / 3,
        erode_p: float = 1 / 3,
        p: float = 1.0,
    ):
        super().__init__(p=p)
        self.kernel_size = kernel_size
        self.dilate_p = dilate_p
        self.erode_p = erode_p

    def get_params(self) -> dict[str, Any]:
        """Draw the operation (dilate, erode or None for unchanged) and the kernel size."""
        draw = self.py_random.random()
        kernel_size = self.py_random.randint(*self.kernel_size)
        if draw < self.dilate_p:
            operation = "dilate"
        elif draw < self.dilate_p + self.erode_p:
            operation = "erode"
        else:
            operation = None
        return {"operation": operation, "morphology_kernel_size": kernel_size}

    def apply(self, img: np.ndarray, **params: Any) -> np.ndarray:
        """Return the image unchanged: only the mask is dilated or eroded."""
        return img

    def apply_to_mask(
        self,
        mask: np.ndarray,
        operation: str | None,
        morphology_kernel_size: int,
        **params: Any,
    ) -> np.ndarray:
        """Dilate or erode the mask with an elliptical kernel."""
        if operation is None:
            return mask
        kernel = cv2.getStructuringElement(
            cv2.MORPH_ELLIPSE, (morphology_kernel_size, morphology_kernel_size)
        )
        return MASK_MORPHOLOGY[operation](mask, kernel)

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("kernel_size", "dilate_p", "erode_p")


def seed_transform(transform: A.Compose, seed: int | None) -> None:
    """Give every transform in ``transform`` one shared random stream seeded with ``seed``.

    ``A.Compose(seed=...)`` gives each transform its own generator with the same seed, so two
    transforms with equal ``p`` make the same decision (both flips or neither); one shared stream
    keeps the draws independent and still reproducible.
    """
    transform.set_random_state(np.random.default_rng(seed), random.Random(seed))


def build_train_transform(
    augmentation: AugmentationSettings = OFFICIAL_AUGMENTATION, seed: int | None = None
) -> A.Compose:
    """Build the official SSFormer training augmentation from the ``augmentation`` block."""
    cfg, size = augmentation, augmentation.image_size
    transform = A.Compose(
        [
            A.Resize(
                size,
                size,
                interpolation=cv2.INTER_LINEAR,
                mask_interpolation=cv2.INTER_NEAREST_EXACT,
            ),
            A.Affine(
                scale=tuple(cfg.scale_crop.scale),
                keep_ratio=True,
                interpolation=cv2.INTER_LINEAR,
                mask_interpolation=cv2.INTER_NEAREST,
                border_mode=cv2.BORDER_CONSTANT,
                fill=0,
                fill_mask=0,
                p=cfg.scale_crop.p,
            ),
            A.HorizontalFlip(p=cfg.flip.horizontal_p),
            A.VerticalFlip(p=cfg.flip.vertical_p),
            A.Rotate(
                limit=tuple(cfg.rotate.angle),
                interpolation=cv2.INTER_LINEAR,
                mask_interpolation=cv2.INTER_NEAREST,
                border_mode=cv2.BORDER_CONSTANT,
                fill=0,
                fill_mask=0,
                crop_border=False,
                p=cfg.rotate.p,
            ),
            RandomImageEnhance(operation_p=cfg.enhance.p, max_delta=cfg.enhance.max_delta),
            RandomDilationErosion(
                kernel_size=tuple(cfg.dilation_erosion.kernel_size),
                dilate_p=cfg.dilation_erosion.dilate_p,
                erode_p=cfg.dilation_erosion.erode_p,
            ),
            _normalize(cfg),
            ToTensorV2(),
        ]
    )
    seed_transform(transform, seed)
    return transform


def build_eval_transform(augmentation: AugmentationSettings = OFFICIAL_AUGMENTATION) -> A.Compose:
    """Build the test-time transform: resize the image, normalise, convert to a tensor."""
    cfg, size = augmentation, augmentation.image_size
    return A.Compose(
        [
            A.Resize(size, size, interpolation=cv2.INTER_LINEAR),
            _normalize(cfg),
            ToTensorV2(),
        ]
    )


def _normalize(cfg: AugmentationSettings) -> A.Normalize:
    return A.Normalize(
        mean=tuple(cfg.normalize.mean),
        std=tuple(cfg.normalize.std),
        max_pixel_value=255.0,
    )
