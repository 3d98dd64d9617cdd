"""Listing and checking model names must not import segmentation-models-pytorch, timm or torchvision."""

import json
import subprocess
import sys

HEAVY_MODULES = ("segmentation_models_pytorch", "timm", "torchvision")

SCRIPT = f"""
import json, sys
import ssformer_repro.models as models
from ssformer_repro.models.backbones import build_backbone, get_backbone_spec
from ssformer_repro.models.pretrained import is_weights_path

models.available_backbones()
models.available_heads()
get_backbone_spec("mit_b0")
is_weights_path("mit_b0.pth")
loaded = lambda: [name for name in {HEAVY_MODULES!r} if name in sys.modules]
after_listing = loaded()
build_backbone("mit_b0")
print(json.dumps({{"after_listing": after_listing, "after_build": loaded()}}))
"""


def test_listing_names_imports_no_model_library_but_building_does() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True
    )
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded["after_listing"] == []
    assert "segmentation_models_pytorch" in loaded["after_build"]
