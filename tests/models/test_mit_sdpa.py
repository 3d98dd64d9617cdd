"""MiT attention through scaled_dot_product_attention: same function, parameters and keys as smp's."""

import copy

import pytest
import segmentation_models_pytorch.encoders.mix_transformer as smp_mit
import torch
from torch import nn

from ssformer_repro.models import load_encoder_weights
from ssformer_repro.models.backbones import build_backbone
from ssformer_repro.models.mit_sdpa import SdpaAttention, use_sdpa_attention
from ssformer_repro.models.sizes import forward_gflops

MIT_B0_BLOCKS = 2 + 2 + 2 + 2


@pytest.fixture(scope="module")
def manual_and_sdpa():
    """A manual-attention MiT-B0 backbone and an SDPA copy of it with the same weights."""
    torch.manual_seed(0)
    manual = build_backbone("mit_b0", attention="manual")
    sdpa = copy.deepcopy(manual)
    use_sdpa_attention(sdpa.encoder)
    return manual, sdpa


def attention_types(backbone: nn.Module) -> list[type]:
    return [
        type(module)
        for module in backbone.modules()
        if isinstance(module, smp_mit.Attention | SdpaAttention)
    ]


def test_every_attention_is_replaced(manual_and_sdpa):
    manual, sdpa = manual_and_sdpa
    assert attention_types(manual) == [smp_mit.Attention] * MIT_B0_BLOCKS
    assert attention_types(sdpa) == [SdpaAttention] * MIT_B0_BLOCKS


def test_sdpa_is_the_default_and_manual_stays_available():
    assert set(attention_types(build_backbone("mit_b0"))) == {SdpaAttention}
    with pytest.raises(ValueError, match="'fused'.*'sdpa', 'manual'"):
        build_backbone("mit_b0", attention="fused")


def test_state_dict_keys_order_and_shapes_are_smps(manual_and_sdpa):
    manual, sdpa = manual_and_sdpa
    manual_state, sdpa_state = manual.state_dict(), sdpa.state_dict()
    assert list(sdpa_state) == list(manual_state)
    assert "encoder.block1.0.attn.sr.weight" in sdpa_state
    for key, tensor in sdpa_state.items():
        assert tensor.shape == manual_state[key].shape, key


@pytest.mark.parametrize("shape", [(1, 3, 64, 64), (2, 3, 64, 96), (1, 3, 96, 32)])
def test_outputs_equal_manual_attention(manual_and_sdpa, shape):
    manual, sdpa = (backbone.eval() for backbone in manual_and_sdpa)
    images = torch.randn(shape)
    with torch.no_grad():
        expected, actual = manual(images), sdpa(images)
    assert len(actual) == len(expected) == 4
    for manual_map, sdpa_map in zip(expected, actual, strict=True):
        torch.testing.assert_close(sdpa_map, manual_map, rtol=0, atol=1e-5)


def test_gradients_equal_manual_attention(manual_and_sdpa):
    gradients = []
    for backbone in manual_and_sdpa:
        backbone.train().zero_grad()
        torch.manual_seed(1)  # the same stochastic-depth draws in both
        images = torch.randn(2, 3, 64, 96, requires_grad=True)
        sum(feature.square().mean() for feature in backbone(images)).backward()
        gradients.append(
            {"images": images.grad}
            | {name: parameter.grad for name, parameter in backbone.named_parameters()}
        )
    manual_gradients, sdpa_gradients = gradients
    assert sdpa_gradients.keys() == manual_gradients.keys()
    for name, gradient in sdpa_gradients.items():
        torch.testing.assert_close(gradient, manual_gradients[name], rtol=1e-4, atol=1e-5)


def test_nvlabs_style_weights_load_into_both(tmp_path, manual_and_sdpa):
    """An NVlabs `mit_b0.pth` layout: the encoder's keys plus the ImageNet classifier."""
    weights = {
        **manual_and_sdpa[0].encoder.state_dict(),
        "head.weight": torch.randn(1000, 256),
        "head.bias": torch.randn(1000),
    }
    path = tmp_path / "mit_b0.pth"
    torch.save(weights, path)
    images = torch.randn(1, 3, 64, 64)
    outputs = []
    for attention in ("manual", "sdpa"):
        torch.manual_seed(2)  # initialised differently from the saved weights
        backbone = build_backbone("mit_b0", attention=attention).eval()
        load_encoder_weights(backbone.encoder, path)
        for key, tensor in backbone.encoder.state_dict().items():
            assert torch.equal(tensor, weights[key]), (attention, key)
        with torch.no_grad():
            outputs.append(backbone(images))
    for manual_map, sdpa_map in zip(*outputs, strict=True):
        torch.testing.assert_close(sdpa_map, manual_map, rtol=0, atol=1e-5)


def test_gflops_count_attention_on_both_paths(manual_and_sdpa):
    manual, sdpa = manual_and_sdpa
    assert forward_gflops(sdpa, size=64) == pytest.approx(forward_gflops(manual, size=64))


def test_non_mit_encoders_are_refused():
    with pytest.raises(ValueError, match="Sequential has no segmentation-models-pytorch MiT"):
        use_sdpa_attention(nn.Sequential(nn.Linear(2, 2)))
