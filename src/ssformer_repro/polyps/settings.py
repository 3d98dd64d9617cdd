"""The parameter blocks of the data: the training augmentation, each dataset (its layout, split
and synthetic generator) and how datasets are processed."""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import (
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveInt,
    field_validator,
    model_validator,
)

from ssformer_repro.polyps.layouts import LAYOUTS
from ssformer_repro.polyps.splits import SPLIT_OPTIONS
from ssformer_repro.settings_types import Pair, Probability, Settings, Triple

# What to do with a mask of more than two grey values (JPEG noise, soft labels, several classes).
NonBinaryMaskPolicy = Literal["binarise", "error"]


class ScaleCrop(Settings):
    p: Probability = 0.5
    scale: Pair[Annotated[float, Field(gt=0)]] = [0.75, 1.25]


class Flip(Settings):
    horizontal_p: Probability = 0.5
    vertical_p: Probability = 0.5


class Rotate(Settings):
    p: Probability = 0.5
    angle: Pair[float] = [0, 359]


class Enhance(Settings):
    p: Probability = 0.5
    max_delta: NonNegativeFloat = 0.1


class DilationErosion(Settings):
    kernel_size: Pair[PositiveInt] = [2, 4]
    dilate_p: Probability = 0.3333
    erode_p: Probability = 0.3333

    @model_validator(mode="after")
    def _consistent(self) -> DilationErosion:
        if self.kernel_size[0] > self.kernel_size[1]:
            raise ValueError(f"kernel_size must be [low, high], got {list(self.kernel_size)}")
        if self.dilate_p + self.erode_p > 1:
            raise ValueError("dilate_p + erode_p must be at most 1")
        return self


class Normalize(Settings):
    mean: Triple[float] = [0.485, 0.456, 0.406]
    std: Triple[float] = [0.229, 0.224, 0.225]


class AugmentationSettings(Settings):
    """The official training augmentation, step by step, and the training size."""

    image_size: PositiveInt = 352
    scale_crop: ScaleCrop = ScaleCrop()
    flip: Flip = Flip()
    rotate: Rotate = Rotate()
    enhance: Enhance = Enhance()
    dilation_erosion: DilationErosion = DilationErosion()
    normalize: Normalize = Normalize()

    @field_validator("image_size")
    @classmethod
    def _multiple_of_32(cls, value: int) -> int:
        if value % 32:
            raise ValueError(
                f"must be a multiple of 32 (the backbones downsample by 32), e.g. 352; got {value}"
            )
        return value


# A `strategy` and that strategy's options (polyps/splits.py, SPLIT_STRATEGIES).
Split = Annotated[Union[tuple(SPLIT_OPTIONS.values())], Field(discriminator="strategy")]  # noqa: UP007


class SyntheticSettings(Settings):
    """The generator of a synthetic dataset (polyps/synthetic.py)."""

    n_images: PositiveInt  # of the TrainDataset, for the pranet layout
    seed: NonNegativeInt = 0
    min_size: Annotated[int, Field(ge=32)] = 96
    max_size: Annotated[int, Field(ge=32)] = 160
    max_polyps: PositiveInt = 2
    polyp_size: Pair[Annotated[float, Field(gt=0, le=0.9)]] = [0.08, 0.35]  # of the short side
    contrast: Annotated[float, Field(gt=0)] = (
        1.0  # how much paler than the mucosa a polyp is (1: as for tests)
    )
    test_sets: dict[str, PositiveInt] | None = None  # pranet layout: test set -> images


class DatasetSettings(Settings):
    """One dataset: where its files are, in which layout, and how it is split."""

    source: Literal["files", "synthetic"] = "files"
    layout: str
    root: str
    split: Split
    synthetic: SyntheticSettings | None = None

    @field_validator("layout")
    @classmethod
    def _known_layout(cls, value: str) -> str:
        if value not in LAYOUTS:
            raise ValueError(f"unknown layout {value!r}; valid: {sorted(LAYOUTS)}")
        return value

    @model_validator(mode="after")
    def _synthetic_has_its_generator(self) -> DatasetSettings:
        if (self.source == "synthetic") != (self.synthetic is not None):
            raise ValueError(
                "`synthetic:` settings are needed with, and only with, source: synthetic"
            )
        return self


class Preview(Settings):
    n_samples: PositiveInt = 6
    n_augmentations: PositiveInt = 3
    seed: NonNegativeInt = 0


class DataProcessingSettings(Settings):
    """Which datasets are built, and how their masks and cache are made."""

    datasets: list[str]
    mask_threshold: Annotated[int, Field(ge=0, le=254)] = 127
    non_binary_masks: NonBinaryMaskPolicy = "binarise"
    cache_size: PositiveInt = 352
    preview: Preview = Preview()
