"""The `model` parameter block: each head's options (declared by the head, models/heads/) and
ImageNet weights per backbone."""

from __future__ import annotations

from pydantic import PositiveInt, create_model, field_validator

from ssformer_repro.models.backbones import available_backbones
from ssformer_repro.models.heads import HEADS
from ssformer_repro.settings_types import Settings

# One block per head of the registry, each with the head's defaults.
HeadOptions = create_model(
    "HeadOptions",
    __base__=Settings,
    __doc__="Options per head (the head's keyword arguments).",
    **{name: (spec.options, spec.options()) for name, spec in HEADS.items()},
)


class ModelSettings(Settings):
    """Head options and ImageNet weights per backbone (a local file, a hub name, or null)."""

    head_options: HeadOptions = HeadOptions()
    pretrained: dict[str, str | None] | None = None

    @field_validator("pretrained")
    @classmethod
    def _known_backbones(cls, value: dict | None) -> dict | None:
        unknown = sorted(set(value or {}) - set(available_backbones()))
        if unknown:
            raise ValueError(f"unknown backbone(s) {unknown}; valid: {available_backbones()}")
        return value


class ModelSizesSettings(Settings):
    """The model-size table of the grid's models (backbone x head of its runs)."""

    image_size: PositiveInt = 352
