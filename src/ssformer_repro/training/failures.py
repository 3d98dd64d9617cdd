"""Failures that are not bugs: out of memory, disk full, steps the fp16 grad scaler skipped.

Each becomes a message that says which resource ran out and what to do; training resumes from
`last.pt` once it is fixed, so nothing but the current epoch is lost.
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from ssformer_repro.storage.atomic import DiskFullError, explain_disk_full, is_disk_full

logger = logging.getLogger(__name__)

# What allocators say when they fail (CUDA, CPU, Apple MPS); CUDA raises torch.OutOfMemoryError.
OUT_OF_MEMORY_PHRASES = ("out of memory", "can't allocate memory", "not enough memory")
GPU_MARKERS = ("cuda", "mps", "hip")


class OutOfMemoryError(RuntimeError):
    """A run needed more GPU or CPU memory than there is; the message names the batch size to try."""


def is_out_of_memory(error: BaseException) -> bool:
    """Whether `error` is an allocator failure (GPU or CPU), not an ordinary bug."""
    if isinstance(error, torch.OutOfMemoryError | MemoryError):
        return True
    message = str(error).lower()
    return isinstance(error, RuntimeError) and any(p in message for p in OUT_OF_MEMORY_PHRASES)


def smaller_batch_size(batch_size: int, processes: int = 1) -> int | None:
    """Half of `batch_size`, kept a multiple of `processes` (DDP); None when it cannot shrink."""
    smaller = (batch_size // 2) // processes * processes
    return smaller if smaller >= processes else None


def explain_out_of_memory(
    error: BaseException,
    batch_size: int,
    run_name: str = "",
    processes: int = 1,
    setting: str = "training.batch_size",
) -> str:
    """What ran out (GPU or CPU memory), at which batch size, and the batch size to try instead.

    `setting` is the parameter that holds `batch_size`, e.g. "evaluation.batch_size".
    """
    message = str(error).strip()
    on_gpu = isinstance(error, torch.OutOfMemoryError) or any(
        marker in message.lower() for marker in GPU_MARKERS
    )
    memory = "GPU memory" if on_gpu else "CPU memory (RAM)"
    smaller = smaller_batch_size(batch_size, processes)
    if smaller is None:
        advice = (
            f"{setting} is already {batch_size}, the smallest possible: lower "
            "augmentation.image_size, use a smaller backbone, turn on amp on a GPU, or use a "
            "machine with more memory."
        )
    else:
        section, key = setting.rsplit(".", 1)
        override = f"{{{run_name or '<run>'}: {{{section}: {{{key}: {smaller}}}}}}}"
        advice = (
            f"Try {setting}: {smaller} for this run (reproduce.overrides: {override}), "
            "or turn on amp ('bf16'/'fp16') on a GPU."
        )
    if not on_gpu:
        advice += " Fewer DataLoader workers (num_workers) also save RAM."
    where = f"run {run_name!r}: " if run_name else ""
    first_line = message.splitlines()[0] if message else type(error).__name__
    return (
        f"{where}out of {memory} at {setting} {batch_size} ({first_line}). {advice} "
        "A re-run resumes training from last.pt, losing at most the interrupted epoch."
    )


@contextmanager
def explained_resource_errors(
    run_name: str, batch_size: int, processes: int = 1, setting: str = "training.batch_size"
) -> Iterator[None]:
    """Re-raise out-of-memory and disk-full failures of the block with a message saying what to do.

    Other exceptions pass through untouched.
    """
    try:
        yield
    except DiskFullError:
        raise  # already names the file (see atomic_files.write_atomically)
    except Exception as error:
        if is_out_of_memory(error):
            message = explain_out_of_memory(error, batch_size, run_name, processes, setting)
            raise OutOfMemoryError(message) from error
        if isinstance(error, OSError) and is_disk_full(error):
            message = explain_disk_full(error, error.filename or ".")
            raise DiskFullError(error.errno, f"run {run_name!r}: {message}") from error
        raise


def applied_updates(optimizer: torch.optim.Optimizer) -> int:
    """How many updates an Adam-family optimizer has applied (its "step" state); 0 before the first.

    The fp16 grad scaler skips `optimizer.step()` on inf/NaN gradients (fused AdamW undoes its
    step count instead), so the count of applied updates reveals the skipped steps without a
    GPU synchronisation per step.
    """
    steps = [state["step"] for state in optimizer.state.values() if "step" in state]
    return int(max(float(step) for step in steps)) if steps else 0


def count_skipped_steps(
    optimizer: torch.optim.Optimizer, updates_before: int, steps: int, where: str
) -> int:
    """Steps among the last `steps` whose update the grad scaler skipped; logged, not an error.

    A few skipped steps are how fp16 training finds its loss scale; divergence is a non-finite
    loss, which the training loop stops on.
    """
    skipped = steps - (applied_updates(optimizer) - updates_before)
    if skipped:
        logger.warning(
            "%s: the fp16 grad scaler skipped %d of %d optimizer steps (inf/NaN gradients; it "
            "lowered its loss scale and went on).",
            where,
            skipped,
            steps,
        )
    return skipped
