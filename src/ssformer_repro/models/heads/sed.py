"""SeD: SegFormer's all-MLP decoder, the study's baseline head, and the layers other heads share."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from pydantic import PositiveInt
from torch import Tensor, nn

from ssformer_repro.settings_types import Probability


class LinearEmbedding(nn.Module):
    """SegFormer's per-stage `MLP`: one Linear(C_i -> E) applied to every position of a map."""

    def __init__(self, in_channels: int, embed_dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(in_channels, embed_dim)

    def forward(self, feature_map: Tensor) -> Tensor:
        batch, _, height, width = feature_map.shape
        tokens = self.proj(feature_map.flatten(2).transpose(1, 2))
        return tokens.transpose(1, 2).reshape(batch, -1, height, width)


def conv_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    """mmcv's ConvModule as SegFormer and PLD use it: Conv1x1 (no bias) -> BatchNorm -> ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


def resize_to_first(feature_maps: Sequence[Tensor]) -> list[Tensor]:
    """Resize every map bilinearly (align_corners=False) to the size of the first (stride-4) map."""
    size = feature_maps[0].shape[-2:]
    return [
        F.interpolate(feature_map, size=size, mode="bilinear", align_corners=False)
        for feature_map in feature_maps
    ]


class SegFormerHead(nn.Module):
    """SeD: per-stage Linear embeddings, one 4E -> E fusion, then a 1x1 classifier (stride 4)."""

    upsample_align_corners = False  # SegFormer resizes its logits with align_corners=False

    def __init__(
        self, in_channels: Sequence[int], embed_dim: PositiveInt, dropout: Probability = 0.1
    ) -> None:
        super().__init__()
        self.embeddings = nn.ModuleList(LinearEmbedding(c, embed_dim) for c in in_channels)
        self.fuse = conv_bn_relu(len(in_channels) * embed_dim, embed_dim)
        self.dropout = nn.Dropout2d(dropout)  # SegFormer (mmseg's decode head) drops whole channels
        self.classifier = nn.Conv2d(embed_dim, 1, kernel_size=1)

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        embedded = resize_to_first(
            [embed(feature) for embed, feature in zip(self.embeddings, features, strict=True)]
        )
        fused = self.fuse(torch.cat(embedded[::-1], dim=1))  # SegFormer's order: c4, c3, c2, c1
        return self.classifier(self.dropout(fused))
