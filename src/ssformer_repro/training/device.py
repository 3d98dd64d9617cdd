"""Where training runs and in which precision: CUDA when present, bf16/fp16 autocast there, fp32 on CPU."""

from typing import NamedTuple

import torch

AMP_MODES = ("auto", "bf16", "fp16", "off")


class AmpSettings(NamedTuple):
    """Automatic mixed precision for one device: whether on, the autocast dtype, whether to scale."""

    enabled: bool
    dtype: torch.dtype
    use_grad_scaler: bool


FP32 = AmpSettings(enabled=False, dtype=torch.float32, use_grad_scaler=False)
BF16 = AmpSettings(enabled=True, dtype=torch.bfloat16, use_grad_scaler=False)
FP16 = AmpSettings(enabled=True, dtype=torch.float16, use_grad_scaler=True)


def resolve_device(requested: str = "auto") -> torch.device:
    """Turn "auto", "cpu", "cuda" or "cuda:N" into a device, refusing a GPU that is not there."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(requested)
    except RuntimeError as err:
        raise ValueError(
            f"device {requested!r} is not a valid torch device; use 'auto', 'cpu', 'cuda' or 'cuda:N'."
        ) from err
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(
                f"device {requested!r} was requested but CUDA is not available on this machine; "
                "set device to 'auto' or 'cpu'."
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise RuntimeError(
                f"device {requested!r} was requested but only {torch.cuda.device_count()} "
                "CUDA device(s) exist."
            )
    return device


def amp_settings(device: torch.device, mode: str = "auto") -> AmpSettings:
    """Mixed precision for `device`: "auto" is bf16 on GPUs that support it, else fp16, and off on CPU."""
    if mode not in AMP_MODES:
        raise ValueError(f"amp mode {mode!r} is unknown; valid modes: {', '.join(AMP_MODES)}.")
    if mode == "off":
        return FP32
    if device.type != "cuda":
        if mode != "auto":
            raise ValueError(
                f"amp mode {mode!r} needs a CUDA device, got {device}; use 'auto' or 'off'."
            )
        return FP32
    if mode == "auto":
        mode = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return BF16 if mode == "bf16" else FP16
