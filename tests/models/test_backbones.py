"""Backbones by name: four maps at strides 4..32, and every backbone x head as a whole model."""

import pytest
import timm
import torch

from ssformer_repro.models import (
    BACKBONES,
    HEADS,
    Segmenter,
    available_backbones,
    available_heads,
    build_model,
)
from ssformer_repro.models.backbones import build_backbone, get_backbone_spec
from ssformer_repro.models.heads import build_head

SIZE = 64
STRIDES = (4, 8, 16, 32)


def test_registry_lists_mit_and_pvt_v2_b0_to_b5():
    sizes = [f"b{i}" for i in range(6)]
    assert available_backbones() == [f"mit_{s}" for s in sizes] + [f"pvt_v2_{s}" for s in sizes]
    assert available_heads() == list(HEADS) == ["pld", "sed", "pld_linear"]


def test_unknown_backbone_error_lists_valid_names():
    with pytest.raises(ValueError, match="mit_b9") as error:
        get_backbone_spec("mit_b9")
    assert all(name in str(error.value) for name in BACKBONES)


@pytest.mark.parametrize("name", available_backbones())
def test_backbone_with_every_head_maps_images_to_logits(name):
    """One build per backbone (MiT initialisation is slow); the heads share it."""
    spec = BACKBONES[name]
    backbone = build_backbone(name).eval()
    images = torch.randn(1, 3, SIZE, SIZE)
    with torch.no_grad():
        features = backbone(images)
        shapes = [tuple(feature.shape) for feature in features]
        assert shapes == [
            (1, channels, SIZE // stride, SIZE // stride)
            for channels, stride in zip(spec.channels, STRIDES, strict=True)
        ]
        for head_name in available_heads():
            head = build_head(head_name, spec.channels, spec.embed_dim)
            logits = Segmenter(backbone, head).eval()(images)
            assert logits.shape == (1, 1, SIZE, SIZE), head_name
            assert torch.isfinite(logits).all(), head_name


def test_segformer_width_is_256_for_b0_b1_and_768_above():
    for name, spec in BACKBONES.items():
        assert spec.embed_dim == (256 if name.endswith(("b0", "b1")) else 768), name


@pytest.mark.parametrize(("backbone", "head"), [("mit_b0", "pld"), ("pvt_v2_b0", "sed")])
def test_build_model_end_to_end(backbone, head):
    model = build_model(backbone, head).eval()
    with torch.no_grad():
        logits = model(torch.randn(2, 3, SIZE, 2 * SIZE))
    assert logits.shape == (2, 1, SIZE, 2 * SIZE)
    assert torch.isfinite(logits).all()


def test_mit_encoder_keeps_nvlabs_key_names():
    keys = build_backbone("mit_b0").encoder.state_dict().keys()
    assert {"patch_embed1.proj.weight", "block1.0.attn.q.weight", "norm4.weight"} <= keys


def test_pvt_v2_encoder_keeps_timm_key_names_without_classifier():
    keys = build_backbone("pvt_v2_b0").encoder.state_dict().keys()
    assert {"patch_embed.proj.weight", "stages.0.blocks.0.attn.q.weight"} <= keys
    assert not any(key.startswith("head.") for key in keys)


def test_pvt_v2_outputs_equal_timm_features_only():
    """TimmBackbone avoids features_only only for its key names; the maps are the same."""
    backbone = build_backbone("pvt_v2_b0").eval()
    features_only = timm.create_model("pvt_v2_b0", pretrained=False, features_only=True).eval()
    renamed = {
        key.replace("stages.", "stages_", 1): value
        for key, value in backbone.encoder.state_dict().items()
    }
    features_only.load_state_dict(renamed)
    images = torch.randn(1, 3, SIZE, SIZE)
    with torch.no_grad():
        for ours, timms in zip(backbone(images), features_only(images), strict=True):
            torch.testing.assert_close(ours, timms)
