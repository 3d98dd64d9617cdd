"""The segmentation model: backbone + head + upsampling of the logits to the input size."""

from __future__ import annotations

import os
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from ssformer_repro.models.backbones import build_backbone, get_backbone_spec
from ssformer_repro.models.heads import build_head
from ssformer_repro.models.pretrained import load_encoder_weights
from ssformer_repro.models.settings import ModelSettings
from ssformer_repro.settings_types import options_of

INPUT_MULTIPLE = 32  # the deepest backbone stage has stride 32


class Segmenter(nn.Module):
    """Maps images (N, 3, H, W) to polyp logits (N, 1, H, W), H and W multiples of 32.

    The head predicts at stride 4; the logits are resized bilinearly to the input size with the
    head's own `upsample_align_corners` (True for the official PLD, False for SegFormer's SeD).
    """

    def __init__(self, backbone: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, images: Tensor) -> Tensor:
        height, width = images.shape[-2:]
        if height % INPUT_MULTIPLE or width % INPUT_MULTIPLE:
            raise ValueError(
                f"Input size {height}x{width} is not divisible by {INPUT_MULTIPLE}; "
                "resize or pad the images (e.g. to 352x352)."
            )
        logits = self.head(self.backbone(images))
        return F.interpolate(
            logits,
            size=(height, width),
            mode="bilinear",
            align_corners=self.head.upsample_align_corners,
        )


def build_model(
    backbone: str,
    head: str,
    *,
    pretrained: str | os.PathLike | None = None,
    **head_options: object,
) -> Segmenter:
    """Build `backbone` + `head` by name, optionally with ImageNet weights in the encoder.

    `pretrained`: None (random), "imagenet" (the backbone's hub weights, needs the network or the
    Hugging Face cache), a hub name, or a local weights file (see `load_encoder_weights`).
    `head_options` go to the head, e.g. `embed_dim=`, `fusion="add"`, `dropout=`.
    """
    spec = get_backbone_spec(backbone)
    head_module = build_head(head, spec.channels, spec.embed_dim, **head_options)
    backbone_module = build_backbone(backbone)
    if pretrained is not None:
        source = spec.imagenet_weights if pretrained == "imagenet" else pretrained
        load_encoder_weights(backbone_module.encoder, source)
    return Segmenter(backbone_module, head_module)


def model_choices(backbone: str, head: str, model: ModelSettings) -> dict[str, Any]:
    """What a `model` block sets for one backbone x head: its weights and its head's options,
    with the head's defaults filled in."""
    options = getattr(model.head_options, head, None)
    return {
        "pretrained": (model.pretrained or {}).get(backbone),
        "head_options": options_of(options) if options is not None else {},
    }


def build_configured_model(
    backbone: str, head: str, model: ModelSettings, with_pretrained: bool = True
) -> Segmenter:
    """`build_model` from a `model` parameters block: its head's options and its weights file.

    `with_pretrained=False` skips the ImageNet weights, e.g. before loading a trained checkpoint.
    """
    choices = model_choices(backbone, head, model)
    weights = choices["pretrained"] if with_pretrained else None
    return build_model(backbone, head, pretrained=weights, **choices["head_options"])
