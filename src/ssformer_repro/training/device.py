"""Where training runs and in which precision: CUDA when present; bf16/fp16 autocast on request."""

import functools
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple, get_args

import torch

from ssformer_repro.settings_types import AmpMode

AMP_MODES = get_args(AmpMode)  # the schema's modes


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
    """Mixed precision for `device`, the same meaning on every device.

    - "off": fp32;
    - "auto": bf16 on GPUs that support it, else fp16 with the grad scaler; fp32 on the CPU;
    - "bf16": bfloat16 autocast (on the CPU too), no scaler;
    - "fp16": float16 autocast with the grad scaler, on the CPU where this torch supports it.
    A mode the device cannot do is a ValueError that says so.
    """
    if mode not in AMP_MODES:
        raise ValueError(f"amp mode {mode!r} is unknown; valid modes: {', '.join(AMP_MODES)}.")
    if mode == "off" or (mode == "auto" and device.type != "cuda"):
        return FP32
    if device.type == "cuda":
        if mode == "auto":
            return BF16 if torch.cuda.is_bf16_supported() else FP16
        if mode == "bf16" and not torch.cuda.is_bf16_supported():
            raise ValueError(
                f"amp mode 'bf16' needs a GPU with bfloat16 support; {device} "
                f"({torch.cuda.get_device_name(device)}) has none: use 'fp16' or 'auto'."
            )
        return BF16 if mode == "bf16" else FP16
    if device.type != "cpu":
        raise ValueError(f"amp mode {mode!r} is not supported on {device}; use 'off'.")
    if mode == "fp16" and not cpu_supports_fp16():
        raise ValueError(
            f"amp mode 'fp16' on the CPU needs float16 autocast and a CPU grad scaler, which "
            f"torch {torch.__version__} lacks here; use 'bf16' or 'off' on the CPU."
        )
    return BF16 if mode == "bf16" else FP16


@functools.cache
def cpu_supports_fp16() -> bool:
    """Whether this torch runs float16 autocast and the grad scaler on the CPU."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # torch warns, then disables, an unsupported dtype
            with torch.autocast("cpu", dtype=torch.float16):
                product = torch.ones(2, 2) @ torch.ones(2, 2)
            torch.amp.GradScaler("cpu")
    except (RuntimeError, UserWarning, AttributeError):
        return False
    return product.dtype == torch.float16


@contextmanager
def cpu_threads(threads: int | None) -> Iterator[None]:
    """Torch's CPU threads set to `threads` inside, restored after (None: left as they are).

    Torch takes one thread per core; on a machine shared with other work they wait on each
    other, and fewer threads finish sooner (docs/benchmarks.md, "On a shared machine").
    """
    if threads is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
