"""Checkpoints written atomically and read back with `weights_only=True`, plus the RNG states they hold."""

import os
import random
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

from ssformer_repro.training.failures import DiskFullError, explain_disk_full, is_disk_full

PARTIAL_WRITE_GLOB = ".*.tmp"


class CheckpointError(RuntimeError):
    """A checkpoint file exists but cannot be read."""


def write_atomically(path: str | Path, write: Callable[[BinaryIO], None]) -> None:
    """Write a file through `write(handle)` so that `path` is either the old or the complete new file.

    The data goes to a temporary file in the same folder, is flushed to disk, and then replaces
    `path` in one rename; a failure removes the temporary file and leaves `path` untouched. A full
    disk raises DiskFullError naming `path`. A process killed mid-write leaves only a hidden
    `.<name>.*.tmp` file, which nothing reads (`remove_partial_writes` deletes it).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        handle, temporary = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
        )
        try:
            with os.fdopen(handle, "wb") as file:
                write(file)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError as error:
        if is_disk_full(error):
            raise DiskFullError(error.errno, explain_disk_full(error, path)) from error
        raise
    fsync_folder(path.parent)


def remove_partial_writes(folder: str | Path) -> list[Path]:
    """Delete the temporary files that writers killed mid-write left in `folder`; return them.

    Call it only while no other process writes to `folder` (the run's lock guarantees that).
    """
    leftovers = sorted(Path(folder).glob(PARTIAL_WRITE_GLOB))
    for leftover in leftovers:
        leftover.unlink(missing_ok=True)
    return leftovers


def fsync_folder(folder: Path) -> None:
    """Persist a rename inside `folder` (a no-op where folders cannot be opened, e.g. Windows)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def save_checkpoint(state: dict, path: str | Path) -> None:
    """torch.save `state` to `path` atomically (never a half-written file under the final name)."""
    write_atomically(path, lambda file: torch.save(state, file))


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint with `weights_only=True`; a corrupt or truncated file raises CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist.")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        raise CheckpointError(
            f"cannot read checkpoint {path}: it is corrupt, truncated or holds objects that "
            f"weights_only loading refuses ({type(err).__name__}: {err}). Delete it to start over."
        ) from err


def capture_rng_state() -> dict:
    """Python, numpy, torch CPU (and CUDA) RNG states, in types that `weights_only` loading accepts."""
    bit_generator, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": (bit_generator, keys.tolist(), position, has_gauss, cached_gaussian),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict) -> None:
    """Restore the RNG states captured by `capture_rng_state`."""
    random.setstate(state["python"])
    bit_generator, keys, position, has_gauss, cached_gaussian = state["numpy"]
    np.random.set_state(
        (bit_generator, np.asarray(keys, dtype=np.uint32), position, has_gauss, cached_gaussian)
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
