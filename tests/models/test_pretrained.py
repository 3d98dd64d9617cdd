"""Loading ImageNet weights into encoders: local files, strict key checks, offline hub names."""

import re
import time

import pytest
import torch
from huggingface_hub import constants
from safetensors.torch import save_file

from ssformer_repro.models import build_model, load_encoder_weights
from ssformer_repro.models.backbones import build_backbone


class NotATensor:
    """Any pickled object other than tensors and containers."""


@pytest.fixture(scope="module")
def mit_b0_weights():
    """A randomly initialised MiT-B0 encoder's state_dict plus an ImageNet classifier."""
    state_dict = build_backbone("mit_b0").encoder.state_dict()
    return {**state_dict, "head.weight": torch.randn(1000, 256), "head.bias": torch.randn(1000)}


@pytest.fixture
def offline_empty_hub(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))


def assert_loaded(encoder, weights):
    loaded = encoder.state_dict()
    assert loaded.keys() == {k for k in weights if not k.startswith("head.")}
    for key, tensor in loaded.items():
        torch.testing.assert_close(tensor, weights[key], rtol=0, atol=0)


@pytest.mark.parametrize("wrapper", [None, "state_dict", "model"])
def test_nvlabs_style_file_loads_and_drops_the_classifier(tmp_path, mit_b0_weights, wrapper):
    path = tmp_path / "mit_b0.pth"
    torch.save(mit_b0_weights if wrapper is None else {wrapper: mit_b0_weights}, path)
    encoder = build_backbone("mit_b0").encoder
    load_encoder_weights(encoder, path)
    assert_loaded(encoder, mit_b0_weights)


def test_timm_safetensors_file_loads(tmp_path):
    weights = build_backbone("pvt_v2_b0").encoder.state_dict()
    weights = {**weights, "head.weight": torch.randn(1000, 256), "head.bias": torch.randn(1000)}
    save_file(weights, tmp_path / "model.safetensors")
    encoder = build_backbone("pvt_v2_b0").encoder
    load_encoder_weights(encoder, str(tmp_path / "model.safetensors"))
    assert_loaded(encoder, weights)


def to_whai362_key(key: str) -> str:
    """timm's PVTv2 key -> the original whai362 release's (the inverse of timm's filter)."""
    key = re.sub(r"^patch_embed\.", "patch_embed1.", key)
    key = re.sub(r"^stages\.(\d)\.downsample\.", lambda m: f"patch_embed{int(m[1]) + 1}.", key)
    key = re.sub(r"^stages\.(\d)\.blocks\.", lambda m: f"block{int(m[1]) + 1}.", key)
    key = re.sub(r"^stages\.(\d)\.norm\.", lambda m: f"norm{int(m[1]) + 1}.", key)
    return key.replace(".dwconv.", ".dwconv.dwconv.")


def test_whai362_pvt_v2_file_loads(tmp_path):
    weights = build_backbone("pvt_v2_b0").encoder.state_dict()
    original = {to_whai362_key(key): tensor for key, tensor in weights.items()}
    assert "block1.0.mlp.dwconv.dwconv.weight" in original and "norm4.weight" in original
    torch.save(original, tmp_path / "pvt_v2_b0.pth")
    encoder = build_backbone("pvt_v2_b0").encoder
    load_encoder_weights(encoder, tmp_path / "pvt_v2_b0.pth")
    assert_loaded(encoder, weights)


def test_missing_and_renamed_keys_are_listed(tmp_path, mit_b0_weights):
    weights = dict(mit_b0_weights)
    del weights["norm4.weight"]
    weights["block1.0.attn.query.weight"] = weights.pop("block1.0.attn.q.weight")
    path = tmp_path / "broken.pth"
    torch.save(weights, path)
    with pytest.raises(ValueError, match="broken.pth") as error:
        load_encoder_weights(build_backbone("mit_b0").encoder, path)
    message = str(error.value)
    assert "2 keys missing from the file: block1.0.attn.q.weight, norm4.weight" in message
    assert "1 keys unexpected in the file: block1.0.attn.query.weight" in message


def test_shape_mismatches_are_listed(tmp_path, mit_b0_weights):
    path = tmp_path / "mit_b0.pth"
    torch.save(mit_b0_weights, path)
    with pytest.raises(ValueError, match=r"with another shape: .*file \(32, 3, 7, 7\)") as error:
        load_encoder_weights(build_backbone("mit_b1").encoder, path)  # same depths, wider
    assert "missing" not in str(error.value) and "more)" in str(error.value)  # first 10 listed


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"patch_embed1.proj.weight": NotATensor()}, path)
    with pytest.raises(ValueError, match="evil.pth.*weights_only"):
        load_encoder_weights(build_backbone("pvt_v2_b0").encoder, path)


def test_non_tensor_values_are_refused(tmp_path):
    path = tmp_path / "numbers.pth"
    torch.save({"epoch": 3}, path)
    with pytest.raises(ValueError, match="numbers.pth is not a state_dict"):
        load_encoder_weights(build_backbone("pvt_v2_b0").encoder, path)


def test_missing_file_is_named(tmp_path):
    path = tmp_path / "weights" / "mit_b2.pth"
    with pytest.raises(FileNotFoundError, match="mit_b2.pth"):
        load_encoder_weights(build_backbone("pvt_v2_b0").encoder, path)


@pytest.mark.usefixtures("offline_empty_hub")
@pytest.mark.parametrize(
    ("name", "hint"),
    [("pvt_v2_b0.in1k", "whai362/PVT/releases/tag/v2"), ("mit_b0.imagenet", "NVlabs/SegFormer")],
)
def test_hub_names_fail_fast_offline_with_download_hints(name, hint):
    encoder = build_backbone(name.partition(".")[0]).encoder
    start = time.monotonic()
    with pytest.raises(RuntimeError, match=re.escape(hint)) as error:
        load_encoder_weights(encoder, name)
    assert time.monotonic() - start < 5
    assert "`pretrained:`" in str(error.value) and "offline" in str(error.value)


def test_unknown_hub_name_is_refused():
    with pytest.raises(ValueError, match="'resnet_b0.imagenet'.*local weights file"):
        load_encoder_weights(build_backbone("pvt_v2_b0").encoder, "resnet_b0.imagenet")


def test_build_model_loads_a_local_file(tmp_path, mit_b0_weights):
    torch.save(mit_b0_weights, tmp_path / "mit_b0.pth")
    model = build_model("mit_b0", "sed", pretrained=str(tmp_path / "mit_b0.pth"))
    assert_loaded(model.backbone.encoder, mit_b0_weights)


@pytest.mark.usefixtures("offline_empty_hub")
def test_build_model_imagenet_resolves_to_the_backbones_hub_weights():
    with pytest.raises(RuntimeError, match="'pvt_v2_b0.in1k'"):
        build_model("pvt_v2_b0", "pld", pretrained="imagenet")
