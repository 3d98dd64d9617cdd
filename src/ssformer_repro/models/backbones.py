"""Backbones by name: ImageNet encoders that return four feature maps at strides 4, 8, 16, 32.

segmentation-models-pytorch and timm are imported only when a backbone is built, so that listing
and checking names at `kedro run` start-up stays fast.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from torch import Tensor, nn


def _use_sdpa_attention(encoder: nn.Module) -> nn.Module:
    """smp's MiT with attention computed by torch's fused SDPA kernel (see mit_sdpa.py)."""
    from ssformer_repro.models.mit_sdpa import use_sdpa_attention

    return use_sdpa_attention(encoder)


def _keep_manual_attention(encoder: nn.Module) -> nn.Module:
    """smp's MiT as built: attention written by hand, materialising the attention matrix."""
    return encoder


# How MiT computes attention; both give the same outputs and state_dict, SDPA as fast or faster
# (docs/benchmarks.md).
MIT_ATTENTION: dict[str, Callable[[nn.Module], nn.Module]] = {
    "sdpa": _use_sdpa_attention,
    "manual": _keep_manual_attention,
}


class MiTBackbone(nn.Module):
    """SegFormer's Mix Transformer (MiT) as packaged by segmentation-models-pytorch.

    `self.encoder` keeps NVlabs' key names (`patch_embed1.proj.weight`, `block1.0.attn.q.weight`),
    so NVlabs' `mit_bX.pth` files load into it. `attention="sdpa"` computes attention with torch's
    fused `scaled_dot_product_attention` (see mit_sdpa.py), `"manual"` with smp's own code.
    """

    def __init__(self, name: str, attention: str = "sdpa") -> None:
        import segmentation_models_pytorch as smp

        super().__init__()
        if attention not in MIT_ATTENTION:
            raise ValueError(
                f"Unknown MiT attention {attention!r}; choose one of {list(MIT_ATTENTION)}."
            )
        self.encoder = MIT_ATTENTION[attention](smp.encoders.get_encoder(name, weights=None))

    def forward(self, images: Tensor) -> list[Tensor]:
        # smp's own forward puts the input and an empty stride-2 map in front of the four
        # stages; NVlabs' forward_features returns only the four stages.
        return self.encoder.forward_features(images)


class TimmBackbone(nn.Module):
    """A timm pyramid transformer (PVTv2), returning its four stage outputs.

    Built without a classifier rather than with `features_only=True`: the modules and outputs are
    the same, but `features_only` renames `stages.0` to `stages_0`, so timm's own weight files
    would no longer load key for key into `self.encoder`.
    """

    def __init__(self, name: str) -> None:
        import timm

        super().__init__()
        self.encoder = timm.create_model(name, pretrained=False, num_classes=0)

    def forward(self, images: Tensor) -> list[Tensor]:
        return self.encoder.forward_intermediates(images, intermediates_only=True)


@dataclass(frozen=True)
class BackboneSpec:
    """How to build a backbone and what its feature maps look like."""

    build: Callable[..., nn.Module]
    channels: tuple[int, int, int, int]  # of the maps at strides 4, 8, 16, 32
    embed_dim: int  # SegFormer's decoder width E for this size (heads `sed`, `pld_linear`)
    imagenet_weights: str  # hub name of its ImageNet weights, see pretrained.py


def mit_spec(name: str, channels: tuple[int, int, int, int], embed_dim: int) -> BackboneSpec:
    """A MiT size from segmentation-models-pytorch, with smp's ImageNet weights."""
    return BackboneSpec(partial(MiTBackbone, name), channels, embed_dim, f"{name}.imagenet")


def timm_spec(name: str, channels: tuple[int, int, int, int], embed_dim: int) -> BackboneSpec:
    """A timm pyramid model, with timm's ImageNet-1k weights."""
    return BackboneSpec(partial(TimmBackbone, name), channels, embed_dim, f"{name}.in1k")


B0_CHANNELS = (32, 64, 160, 256)
B1_TO_B5_CHANNELS = (64, 128, 320, 512)

# SegFormer uses E = 256 for B0/B1 and 768 for B2..B5; PVTv2 sizes follow the MiT rule.
BACKBONES: dict[str, BackboneSpec] = {
    "mit_b0": mit_spec("mit_b0", B0_CHANNELS, 256),
    "mit_b1": mit_spec("mit_b1", B1_TO_B5_CHANNELS, 256),
    "mit_b2": mit_spec("mit_b2", B1_TO_B5_CHANNELS, 768),
    "mit_b3": mit_spec("mit_b3", B1_TO_B5_CHANNELS, 768),
    "mit_b4": mit_spec("mit_b4", B1_TO_B5_CHANNELS, 768),
    "mit_b5": mit_spec("mit_b5", B1_TO_B5_CHANNELS, 768),
    "pvt_v2_b0": timm_spec("pvt_v2_b0", B0_CHANNELS, 256),
    "pvt_v2_b1": timm_spec("pvt_v2_b1", B1_TO_B5_CHANNELS, 256),
    "pvt_v2_b2": timm_spec("pvt_v2_b2", B1_TO_B5_CHANNELS, 768),
    "pvt_v2_b3": timm_spec("pvt_v2_b3", B1_TO_B5_CHANNELS, 768),
    "pvt_v2_b4": timm_spec("pvt_v2_b4", B1_TO_B5_CHANNELS, 768),
    "pvt_v2_b5": timm_spec("pvt_v2_b5", B1_TO_B5_CHANNELS, 768),
}


def available_backbones() -> list[str]:
    """Names accepted by `build_backbone` and `build_model`."""
    return list(BACKBONES)


def get_backbone_spec(name: str) -> BackboneSpec:
    """The registry entry for `name`, or a ValueError listing the valid names."""
    if name not in BACKBONES:
        raise ValueError(f"Unknown backbone {name!r}; choose one of {available_backbones()}.")
    return BACKBONES[name]


def build_backbone(name: str, **options: object) -> nn.Module:
    """A randomly initialised backbone; its weight-bearing module is `.encoder`.

    `options` go to the backbone's class, e.g. `attention="manual"` for MiT.
    """
    return get_backbone_spec(name).build(**options)
