"""Checkpoints written atomically and read back with `weights_only=True`, plus the RNG states they hold."""

import random
from pathlib import Path

import numpy as np
import torch

from ssformer_repro.atomic_files import write_atomically


class CheckpointError(RuntimeError):
    """A checkpoint file exists but cannot be read."""


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
