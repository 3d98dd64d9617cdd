"""Decoder heads by name: the Progressive Locality Decoder, its linear variant and SegFormer's SeD.

Every head maps the four backbone maps to one-channel logits at stride 4; its class attribute
`upsample_align_corners` says how the segmenter resizes those logits to the input size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from torch import nn

from ssformer_repro.models.heads.pld import ProgressiveLocalityDecoder
from ssformer_repro.models.heads.pld_linear import LinearLocalityDecoder
from ssformer_repro.models.heads.sed import SegFormerHead


@dataclass(frozen=True)
class HeadSpec:
    """How to build a head: `build(in_channels, embed_dim=..., **options)`."""

    build: Callable[..., nn.Module]
    embed_dim: int | None  # None: use the backbone's SegFormer width (BackboneSpec.embed_dim)


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
