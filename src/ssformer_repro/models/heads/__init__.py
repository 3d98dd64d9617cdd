"""Decoder heads by name: the Progressive Locality Decoder, its linear variant and SegFormer's SeD.

Every head maps the four backbone maps to one-channel logits at stride 4; its class attribute
`upsample_align_corners` says how the segmenter resizes those logits to the input size. A head's
options are its keyword arguments after `in_channels`: their types and defaults are the
`model.head_options.<head>` block (`HeadSpec.options`), so a new option is the head's file and
the YAML.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from torch import nn

from ssformer_repro.models.heads.pld import ProgressiveLocalityDecoder
from ssformer_repro.models.heads.pld_linear import LinearLocalityDecoder
from ssformer_repro.models.heads.sed import SegFormerHead
from ssformer_repro.settings_types import Settings, options_model


@dataclass(frozen=True)
class HeadSpec:
    """How to build a head: `build(in_channels, embed_dim=..., **options)`, and its options."""

    build: Callable[..., nn.Module]
    embed_dim: int | None  # None: use the backbone's SegFormer width (BackboneSpec.embed_dim)
    options: type[Settings] = field(init=False)  # the head's keyword arguments, as a block

    def __post_init__(self) -> None:
        # embed_dim may be left unset (None): the registry's width, or the backbone's.
        options = options_model(
            self.build, f"{self.build.__name__}Options", ("in_channels",), optional=("embed_dim",)
        )
        object.__setattr__(self, "options", options)


HEADS: dict[str, HeadSpec] = {
    "pld": HeadSpec(ProgressiveLocalityDecoder, embed_dim=256),  # official code: C = 256 always
    "sed": HeadSpec(SegFormerHead, embed_dim=None),
    "pld_linear": HeadSpec(LinearLocalityDecoder, embed_dim=None),
}


def available_heads() -> list[str]:
    """Names accepted by `build_head` and `build_model`."""
    return list(HEADS)


def get_head_spec(name: str) -> HeadSpec:
    """The registry entry for `name`, or a ValueError listing the valid names."""
    if name not in HEADS:
        raise ValueError(f"Unknown head {name!r}; choose one of {available_heads()}.")
    return HEADS[name]


def build_head(
    name: str, in_channels: Sequence[int], backbone_embed_dim: int, **options: object
) -> nn.Module:
    """Build head `name` for maps with `in_channels`; `embed_dim` defaults as the registry says."""
    spec = get_head_spec(name)
    options.setdefault("embed_dim", spec.embed_dim or backbone_embed_dim)
    return spec.build(in_channels, **options)


__all__ = [
    "HEADS",
    "HeadSpec",
    "LinearLocalityDecoder",
    "ProgressiveLocalityDecoder",
    "SegFormerHead",
    "available_heads",
    "build_head",
    "get_head_spec",
]
