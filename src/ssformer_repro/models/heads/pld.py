"""PLD: the Progressive Locality Decoder of SSFormer, as in the official code (Qiming-Huang/ssformer).

Local Emphasis (Eq. 1 of the report) turns each stage into C channels with two 3x3 convolutions;
Stepwise Feature Aggregation (Eq. 2) then fuses the stages deepest first. The official code also
builds a 4C -> C fuse layer that its forward never uses; it is left out here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import torch
from pydantic import PositiveInt
from torch import Tensor, nn

from ssformer_repro.models.heads.sed import conv_bn_relu, resize_to_first
from ssformer_repro.settings_types import Probability


class LocalEmphasis(nn.Sequential):
    """Eq. 1: Conv3x3(C_i -> C) -> ReLU -> Conv3x3(C -> C) -> ReLU, no bias, no normalisation."""

    def __init__(self, in_channels: int, channels: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, channels, kernel_size=3, padding=1, bias=False),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, kernel_size=3, padding=1, bias=False),
            nn.ReLU(inplace=True),
        )


def concatenate(deeper: Tensor, shallower: Tensor) -> Tensor:
    """The Cat fusion: deeper map first, as the official `cat([_c4, _c3])`."""
    return torch.cat([deeper, shallower], dim=1)


# fusion name -> (how two maps are combined, channels of the result in units of C)
FUSIONS: dict[str, tuple[Callable[[Tensor, Tensor], Tensor], int]] = {
    "cat": (concatenate, 2),
    "add": (torch.add, 1),
}


class StepwiseFusion(nn.Module):
    """Eq. 2: f34 = U(f4, f3), f234 = U(f34, f2), f = U(f234, f1); each U a Conv1x1 -> BN -> ReLU."""

    def __init__(self, channels: int, fusion: str = "cat", num_stages: int = 4) -> None:
        super().__init__()
        if fusion not in FUSIONS:
            raise ValueError(f"Unknown fusion {fusion!r}; choose one of {list(FUSIONS)}.")
        self.combine, width = FUSIONS[fusion]
        self.units = nn.ModuleList(
            conv_bn_relu(width * channels, channels) for _ in range(num_stages - 1)
        )

    def forward(self, feature_maps: Sequence[Tensor]) -> Tensor:
        """Fuse same-sized maps given shallowest first (stride 4, 8, 16, 32 before resizing)."""
        deepest, *shallower_maps = reversed(feature_maps)
        fused = deepest
        for unit, shallower in zip(self.units, shallower_maps, strict=True):
            fused = unit(self.combine(fused, shallower))
        return fused


class ProgressiveLocalityDecoder(nn.Module):
    """PLD: per-stage Local Emphasis, stepwise fusion, then Dropout -> 1x1 classifier (stride 4)."""

    stage_layer: Callable[[int, int], nn.Module] = LocalEmphasis
    upsample_align_corners = True  # the official model upsamples with UpsamplingBilinear2d

    def __init__(
        self,
        in_channels: Sequence[int],
        embed_dim: PositiveInt,
        fusion: Literal["cat", "add"] = "cat",
        dropout: Probability = 0.1,
    ) -> None:
        super().__init__()
        self.stage_layers = nn.ModuleList(self.stage_layer(c, embed_dim) for c in in_channels)
        self.fusion = StepwiseFusion(embed_dim, fusion, num_stages=len(in_channels))
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Conv2d(embed_dim, 1, kernel_size=1)

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        emphasised = resize_to_first(
            [layer(feature) for layer, feature in zip(self.stage_layers, features, strict=True)]
        )
        return self.classifier(self.dropout(self.fusion(emphasised)))
