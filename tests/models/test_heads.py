"""Heads on synthetic feature maps: layer shapes, parameter counts, fusion order, upsampling."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ssformer_repro.models import Segmenter, build_model
from ssformer_repro.models.heads import (
    LinearLocalityDecoder,
    ProgressiveLocalityDecoder,
    SegFormerHead,
    build_head,
)
from ssformer_repro.models.heads.pld import StepwiseFusion
from ssformer_repro.models.sizes import count_parameters

CHANNELS = (64, 128, 320, 512)
C = 256  # the official PLD's width
E = 768  # SegFormer's width for B2..B5


def features(batch: int = 2, size: int = 64) -> list[torch.Tensor]:
    """Random maps shaped like a B2..B5 backbone's output for a size x size image."""
    return [
        torch.randn(batch, channels, size // stride, size // stride)
        for channels, stride in zip(CHANNELS, (4, 8, 16, 32), strict=True)
    ]


def conv_layers(module: nn.Module) -> list[nn.Conv2d]:
    return [layer for layer in module.modules() if isinstance(layer, nn.Conv2d)]


def norm_layers(module: nn.Module) -> list[nn.Module]:
    norms = (nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm, nn.InstanceNorm2d)
    return [layer for layer in module.modules() if isinstance(layer, norms)]


@pytest.mark.parametrize("name", ["pld", "sed", "pld_linear"])
def test_head_predicts_one_channel_at_stride_4(name):
    head = build_head(name, CHANNELS, backbone_embed_dim=E).eval()
    with torch.no_grad():
        logits = head(features())
    assert logits.shape == (2, 1, 16, 16)
    assert torch.isfinite(logits).all()


def test_official_pld_local_emphasis_is_two_3x3_convs_without_norm():
    head = build_head("pld", CHANNELS, backbone_embed_dim=E)
    assert head.fusion.units[0][0].out_channels == C  # C = 256 whatever the backbone's E
    for in_channels, stage in zip(CHANNELS, head.stage_layers, strict=True):
        first, second = conv_layers(stage)
        assert first.weight.shape == (C, in_channels, 3, 3)
        assert second.weight.shape == (C, C, 3, 3)
        assert first.padding == second.padding == (1, 1)
        assert first.bias is None and second.bias is None
        assert norm_layers(stage) == []
        assert [type(layer) for layer in stage] == [nn.Conv2d, nn.ReLU, nn.Conv2d, nn.ReLU]


def test_official_pld_parameter_count_has_no_unused_4c_fuse_layer():
    head = build_head("pld", CHANNELS, backbone_embed_dim=E)
    local_emphasis = sum(9 * c * C + 9 * C * C for c in CHANNELS)
    fusion_units = 3 * (2 * C * C + 2 * C)  # 1x1 conv without bias, BN weight and bias
    classifier = C + 1
    assert count_parameters(head) == local_emphasis + fusion_units + classifier
    assert all(conv.in_channels != 4 * C for conv in conv_layers(head))


def test_add_fusion_uses_c_to_c_units():
    cat_head = build_head("pld", CHANNELS, backbone_embed_dim=E, fusion="cat")
    add_head = build_head("pld", CHANNELS, backbone_embed_dim=E, fusion="add")
    assert [unit[0].weight.shape for unit in add_head.fusion.units] == [(C, C, 1, 1)] * 3
    assert count_parameters(cat_head) - count_parameters(add_head) == 3 * C * C
    with torch.no_grad():
        assert add_head.eval()(features()).shape == (2, 1, 16, 16)


def test_unknown_fusion_is_refused():
    with pytest.raises(ValueError, match="'mul'.*'cat', 'add'"):
        StepwiseFusion(C, fusion="mul")


def test_stepwise_fusion_fuses_deepest_first():
    fusion = StepwiseFusion(8).eval()
    maps = [torch.randn(1, 8, 4, 4) for _ in range(4)]
    u34, u234, u1234 = fusion.units
    f34 = u34(torch.cat([maps[3], maps[2]], dim=1))
    f234 = u234(torch.cat([f34, maps[1]], dim=1))
    expected = u1234(torch.cat([f234, maps[0]], dim=1))
    with torch.no_grad():
        torch.testing.assert_close(fusion(maps), expected)


def test_sed_matches_segformer_layout():
    head = build_head("sed", CHANNELS, backbone_embed_dim=E)
    assert isinstance(head, SegFormerHead)
    assert [embedding.proj.weight.shape for embedding in head.embeddings] == [
        (E, c) for c in CHANNELS
    ]
    assert head.fuse[0].weight.shape == (E, 4 * E, 1, 1) and head.fuse[0].bias is None
    embeddings = sum(c * E + E for c in CHANNELS)
    assert count_parameters(head) == embeddings + 4 * E * E + 2 * E + E + 1


def test_sed_concatenates_c4_first():
    head = build_head("sed", CHANNELS, backbone_embed_dim=64).eval()
    maps = features(batch=1)
    with torch.no_grad():
        embedded = [embed(x) for embed, x in zip(head.embeddings, maps, strict=True)]
        resized = [F.interpolate(e, size=(16, 16), mode="bilinear") for e in embedded]
        expected = head.classifier(head.fuse(torch.cat(resized[::-1], dim=1)))
        torch.testing.assert_close(head(maps), expected)


def test_pld_linear_is_sed_embeddings_with_stepwise_fusion():
    head = build_head("pld_linear", CHANNELS, backbone_embed_dim=E)
    assert isinstance(head, LinearLocalityDecoder)
    assert all(conv.kernel_size == (1, 1) for conv in conv_layers(head))  # no Local Emphasis
    assert [unit[0].weight.shape for unit in head.fusion.units] == [(E, 2 * E, 1, 1)] * 3
    embeddings = sum(c * E + E for c in CHANNELS)
    assert count_parameters(head) == embeddings + 3 * (2 * E * E + 2 * E) + E + 1


def test_head_options_override_the_width():
    head = build_head("pld_linear", CHANNELS, backbone_embed_dim=E, embed_dim=32, dropout=0.2)
    assert head.classifier.in_channels == 32
    assert head.dropout.p == 0.2


def test_unknown_head_error_lists_valid_names():
    with pytest.raises(ValueError, match="'upernet'.*'pld', 'sed', 'pld_linear'"):
        build_head("upernet", CHANNELS, backbone_embed_dim=E)


def test_upsampling_follows_each_heads_original_code():
    assert ProgressiveLocalityDecoder.upsample_align_corners  # UpsamplingBilinear2d
    assert not SegFormerHead.upsample_align_corners
    assert not LinearLocalityDecoder.upsample_align_corners


class FixedFeatures(nn.Module):
    """A stand-in backbone returning the same maps for any input."""

    def __init__(self, maps: list[torch.Tensor]) -> None:
        super().__init__()
        self.maps = maps

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        return self.maps


def test_segmenter_upsamples_pld_like_the_official_code():
    maps = features(batch=1)
    head = build_head("pld", CHANNELS, backbone_embed_dim=E).eval()
    with torch.no_grad():
        logits = Segmenter(FixedFeatures(maps), head)(torch.zeros(1, 3, 64, 64))
        expected = nn.UpsamplingBilinear2d(scale_factor=4)(head(maps))
    torch.testing.assert_close(logits, expected)


@pytest.mark.parametrize(("height", "width"), [(64, 48), (50, 64)])
def test_segmenter_refuses_sizes_not_divisible_by_32(height, width):
    model = build_model("pvt_v2_b0", "sed")
    with pytest.raises(ValueError, match=f"{height}x{width}"):
        model(torch.zeros(1, 3, height, width))
