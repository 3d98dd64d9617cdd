"""Load ImageNet weights into a backbone's encoder from a local file or, when online, the hub.

Accepted sources: a local `.pth`/`.pt`/`.bin` (NVlabs `mit_bX.pth`, whai362 `pvt_v2_bX.pth`, a plain
or `{"state_dict": ...}` / `{"model": ...}` checkpoint) or `.safetensors` file; or a hub name,
`mit_bX.imagenet` (segmentation-models-pytorch) or `pvt_v2_bX.in1k` (timm).
"""

from __future__ import annotations

import logging
import os
import pickle
import socket
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

import torch
from huggingface_hub import constants, hf_hub_download
from huggingface_hub.errors import HfHubHTTPError
from safetensors.torch import load_file
from torch import Tensor, nn

logger = logging.getLogger(__name__)

WEIGHT_FILE_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors")
CHECKPOINT_WRAPPER_KEYS = ("state_dict", "model")  # where training checkpoints keep the weights
CLASSIFIER_PREFIX = "head."  # ImageNet classifier, not part of a segmentation encoder
LISTED_KEYS = 10  # how many key names an error message shows per kind of problem

# Hub-name prefix -> where to get the original file instead when offline.
DOWNLOAD_HINTS = {
    "mit_": "{model}.pth from the NVlabs SegFormer README (https://github.com/NVlabs/SegFormer)",
    "pvt_v2_": "{model}.pth from https://github.com/whai362/PVT/releases/tag/v2",
}


def load_encoder_weights(encoder: nn.Module, source: str | os.PathLike) -> None:
    """Load `source` into `encoder` (a backbone's `.encoder`), requiring every key to match."""
    path = resolve_weights_file(source)
    state_dict = read_state_dict(path)
    converter = key_converter(encoder)
    if converter is not None:
        state_dict = converter(state_dict, encoder)
    classifier_keys = [key for key in state_dict if key.startswith(CLASSIFIER_PREFIX)]
    if classifier_keys:
        logger.info("Dropping the ImageNet classifier %s of %s", classifier_keys, path)
    state_dict = {k: v for k, v in state_dict.items() if k not in classifier_keys}
    check_matches(encoder, state_dict, path)
    encoder.load_state_dict(state_dict)
    logger.info("Loaded %d encoder tensors from %s", len(state_dict), path)


def key_converter(encoder: nn.Module) -> Callable[[dict[str, Tensor], nn.Module], dict] | None:
    """The function mapping another layout of `encoder`'s weights to its own key names, if any."""
    from timm.models import pvt_v2

    # timm's filter renames whai362's original PVTv2 keys (`block1.0...`) to timm's (`stages.0...`).
    converters = {pvt_v2.PyramidVisionTransformerV2: pvt_v2.checkpoint_filter_fn}
    return converters.get(type(encoder))


def is_weights_path(source: str | os.PathLike) -> bool:
    """Whether `source` names a local file (a path or a weights suffix) rather than a hub name."""
    text = os.fspath(source)
    return Path(text).suffix in WEIGHT_FILE_SUFFIXES or os.sep in text or "/" in text


def resolve_weights_file(source: str | os.PathLike) -> Path:
    """The local file for `source`: the path itself, or the hub file for a hub name."""
    text = os.fspath(source)
    if is_weights_path(text):
        path = Path(text).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"Encoder weights file {path} does not exist.")
        return path
    return download_hub_weights(text)


def read_state_dict(path: Path) -> dict[str, Tensor]:
    """Tensors of a weights file, refusing pickled content other than tensors and containers."""
    if path.suffix == ".safetensors":
        return load_file(path, device="cpu")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise ValueError(
            f"{path} holds pickled objects other than tensors; it was refused "
            "(torch.load with weights_only=True). Use a plain state_dict or a .safetensors file."
        ) from err
    for key in CHECKPOINT_WRAPPER_KEYS:
        if isinstance(loaded, dict) and isinstance(loaded.get(key), dict):
            loaded = loaded[key]
    if not isinstance(loaded, dict) or not all(isinstance(v, Tensor) for v in loaded.values()):
        raise ValueError(f"{path} is not a state_dict (a dict of names to tensors).")
    return loaded


def check_matches(encoder: nn.Module, state_dict: dict[str, Tensor], path: Path) -> None:
    """Raise a ValueError naming `path` unless its keys and shapes are exactly the encoder's."""
    expected = encoder.state_dict()
    missing = sorted(expected.keys() - state_dict.keys())
    unexpected = sorted(state_dict.keys() - expected.keys())
    mismatched = [
        f"{key}: file {tuple(tensor.shape)}, encoder {tuple(expected[key].shape)}"
        for key, tensor in state_dict.items()
        if key in expected and tensor.shape != expected[key].shape
    ]
    if missing or unexpected or mismatched:
        problems = [
            describe_keys("missing from the file", missing),
            describe_keys("unexpected in the file", unexpected),
            describe_keys("with another shape", mismatched),
        ]
        raise ValueError(
            f"Weights in {path} do not fit {type(encoder).__name__}: "
            + "; ".join(p for p in problems if p)
            + ". Check that the file is for this backbone."
        )


def describe_keys(what: str, keys: list[str]) -> str:
    """'N keys <what>: first ten...' or '' when there are none."""
    if not keys:
        return ""
    shown = ", ".join(keys[:LISTED_KEYS])
    more = f", ... ({len(keys) - LISTED_KEYS} more)" if len(keys) > LISTED_KEYS else ""
    return f"{len(keys)} keys {what}: {shown}{more}"


def hub_location(name: str) -> tuple[str, str | None]:
    """(Hugging Face repo id, revision) of hub weights `name`, e.g. 'mit_b2.imagenet'."""
    import segmentation_models_pytorch as smp
    import timm

    model, _, tag = name.partition(".")
    smp_settings = smp.encoders.encoders.get(model, {}).get("pretrained_settings", {})
    if tag in smp_settings:
        return smp_settings[tag]["repo_id"], smp_settings[tag]["revision"]
    timm_config = timm.models.get_pretrained_cfg(name) if tag else None
    if timm_config is not None and timm_config.hf_hub_id:
        return timm_config.hf_hub_id, None
    raise ValueError(
        f"Unknown encoder weights {name!r}: give a local weights file path "
        f"({', '.join(WEIGHT_FILE_SUFFIXES)}) or a hub name such as 'mit_b2.imagenet' or "
        "'pvt_v2_b2.in1k'."
    )


def hub_is_reachable(timeout_s: float = 2.0) -> bool:
    """False when HF_HUB_OFFLINE is set or the hub's host does not answer within `timeout_s`."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}:
        return False
    host = urlparse(constants.ENDPOINT).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=timeout_s).close()
    except OSError:
        return False
    return True


def download_hub_weights(name: str) -> Path:
    """The cached or (when online) downloaded `model.safetensors` of hub weights `name`."""
    repo_id, revision = hub_location(name)
    online = hub_is_reachable()
    try:
        return Path(
            hf_hub_download(
                repo_id, "model.safetensors", revision=revision, local_files_only=not online
            )
        )
    except (OSError, HfHubHTTPError) as err:
        model = name.partition(".")[0]
        hints = [
            hint.format(model=model) for p, hint in DOWNLOAD_HINTS.items() if model.startswith(p)
        ]
        hints.append(f"model.safetensors from https://huggingface.co/{repo_id}")
        state = "could not be downloaded" if online else "are not cached and the hub is offline"
        raise RuntimeError(
            f"Encoder weights {name!r} {state}. Download {' or '.join(hints)}, "
            "then set `pretrained:` to the local file's path."
        ) from err
