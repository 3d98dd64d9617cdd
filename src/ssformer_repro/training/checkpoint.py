"""A run's files and its resume policy.

A run folder holds `last.pt` (everything needed to resume: weights, optimiser, schedule, RNG
states, history, settings), `last.json` (the same without the tensors, for a cheap look at a
run's progress, its per-epoch history included) and `best.pt` (the best epoch's weights); the
history table `history.csv` is the training node's output, which the catalog writes. Files are
written atomically and read back with `weights_only=True`. `RunRecord.judge` decides once per run
whether it starts, resumes, restarts or is done; `restore` acts on that decision;
`CheckpointWriter` writes the files after an epoch.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn

from ssformer_repro.errors import UserError
from ssformer_repro.storage.atomic import write_atomically
from ssformer_repro.training.settings import RESUMABLE_CHANGES, TrainingSettings

logger = logging.getLogger(__name__)

LAST_CHECKPOINT = "last.pt"
LAST_SUMMARY = "last.json"  # last.pt's progress and settings, without tensors
BEST_CHECKPOINT = "best.pt"
HISTORY_FILE = "history.csv"  # written into run folders by earlier versions; moved on restart
HISTORY_COLUMNS = (
    "epoch",
    "lr",
    "train_loss",
    "val_mdice",
    "val_miou",
    "images_per_second",
    "epoch_seconds",
    "skipped_steps",  # optimizer steps the fp16 grad scaler skipped (inf/NaN gradients)
)
LAST_CHECKPOINT_KEYS = (
    "epoch",
    "model",
    "optimizer",
    "scheduler",
    "grad_scaler",
    "best_val_mdice",
    "best_epoch",
    "history",
    "rng",
    "loader_rng",
    "config",
    "fingerprint",
)
# What last.json copies from last.pt: enough to decide whether a run is done, resumes or restarts.
LAST_SUMMARY_KEYS = (
    "epoch",
    "best_val_mdice",
    "best_epoch",
    "history",
    "config",
    "fingerprint",
    "metadata",
)
SUPERSEDED_FOLDER = "superseded"


class CheckpointError(RuntimeError):
    """A checkpoint file exists but cannot be read."""


def save_checkpoint(state: dict, path: str | Path) -> None:
    """torch.save `state` to `path` atomically (never a half-written file under the final name)."""
    write_atomically(path, lambda file: torch.save(state, file))


def load_checkpoint(
    path: str | Path, map_location: str | torch.device = "cpu", mmap: bool = False
) -> dict:
    """Load a checkpoint with `weights_only=True`; a corrupt or truncated file raises CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist.")
    try:
        return torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
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


@dataclass
class RunState:
    """Progress of a run: the last completed epoch, the best validation so far and the history."""

    epoch: int = 0
    best_val_mdice: float = -math.inf
    best_epoch: int = 0
    history: list[dict] = field(default_factory=list)
    # The best epoch's best.pt contents while they wait for the next checkpoint write.
    unsaved_best: dict | None = None

    def record(self, row: dict) -> bool:
        """Add a finished epoch's history row; return whether its validation mDice is the best."""
        self.history.append(row)
        self.epoch = row["epoch"]
        improved = row["val_mdice"] > self.best_val_mdice  # False for NaN: epochs not validated
        if improved:
            self.best_val_mdice, self.best_epoch = row["val_mdice"], self.epoch
        return improved


class ChangedSettingsError(UserError, ValueError):
    """`last.pt` was written with other settings or inputs than this run's."""


class TrainedPastEpochsError(ChangedSettingsError):
    """`last.pt` holds more epochs than `training.epochs`: a longer run than the one asked for.

    Refused as a changed setting is (`on_changed_settings: restart` moves it aside): its best
    epoch was chosen among epochs that this run would not train.
    """


def run_fingerprint(config: TrainingSettings, inputs: dict | None = None) -> dict:
    """What a run's result depends on: its training settings (but those that may change on
    resume, such as `epochs`) and its other `inputs` (model, augmentation, data, code)."""
    training = config.model_dump(mode="json", exclude=set(RESUMABLE_CHANGES))
    return {"training": training, **(inputs or {})}


@dataclass(frozen=True)
class RunRecord:
    """A run's folder judged once against the run's settings and inputs: whether training
    starts, resumes, restarts (last.pt of other settings, `on_changed_settings: restart`) or has
    nothing left to do; with the fingerprint its files are written with and, when resuming or
    done, last.pt's progress (`last_progress`: no tensors)."""

    folder: Path
    fingerprint: dict
    action: Literal["start", "resume", "restart", "done"]
    progress: dict | None = None
    reason: str = ""  # why a restart moves the old files aside

    @classmethod
    def judge(cls, folder: Path, config: TrainingSettings, inputs: dict | None = None) -> RunRecord:
        """The record of `folder` for a run of `config` and `inputs`; a ChangedSettingsError
        when its last.pt is of other settings and `on_changed_settings` is `refuse`."""
        folder = Path(folder)
        fingerprint = json.loads(json.dumps(run_fingerprint(config, inputs)))
        last = folder / LAST_CHECKPOINT
        if not last.exists():
            return cls(folder, fingerprint, "start")
        try:
            progress = load_resumable(last, config, inputs, progress_only=True)
        except ChangedSettingsError as error:
            if config.on_changed_settings != "restart":
                raise
            return cls(folder, fingerprint, "restart", reason=str(error))
        action = "done" if progress["epoch"] == config.epochs else "resume"
        return cls(folder, fingerprint, action, progress)

    def progress_state(self) -> RunState:
        """The progress the record holds (none when starting or restarting)."""
        if self.progress is None:
            return RunState()
        return RunState(
            epoch=self.progress["epoch"],
            best_val_mdice=self.progress["best_val_mdice"],
            best_epoch=self.progress["best_epoch"],
            history=list(self.progress["history"]),
        )


def restore(parts, record: RunRecord, run_name: str, is_main: bool) -> RunState:
    """Act on `record`: restore `parts` (a RunParts) from last.pt when resuming, or move the old
    files to superseded/ when restarting; return the progress training goes on from."""
    if record.action == "restart":
        if is_main:
            superseded = supersede(record.folder)
            logger.warning(
                "run %r: %s Moved to %s; training from scratch.",
                run_name,
                record.reason,
                superseded,
            )
        return RunState()
    if record.action == "start":
        return RunState()
    last_path = record.folder / LAST_CHECKPOINT
    checkpoint = load_checkpoint(last_path)
    missing = [key for key in LAST_CHECKPOINT_KEYS if key not in checkpoint]
    if missing:
        raise CheckpointError(
            f"{last_path} is not a training checkpoint of this code (missing {missing}); "
            "delete it or use a new run directory."
        )
    parts.load_state_dict(checkpoint)
    logger.info(
        "run %r: resuming from %s after epoch %d.", run_name, last_path, checkpoint["epoch"]
    )
    return record.progress_state()


@dataclass
class CheckpointWriter:
    """Writes a run's files after an epoch once `checkpoint_every_seconds` have passed since the
    last write, and after the final epoch."""

    run_dir: Path
    config: TrainingSettings
    run_name: str
    fingerprint: dict
    metadata: dict = field(default_factory=dict)
    last_written: float = field(default_factory=time.monotonic)

    def after_epoch(self, parts, state: RunState, improved: bool) -> None:
        """Keep a copy of the weights if this epoch is the best, and write the files when due."""
        if improved:
            state.unsaved_best = best_checkpoint(parts.model, state, self.config, self.run_name)
        waited = time.monotonic() - self.last_written
        if state.epoch == self.config.epochs or waited >= self.config.checkpoint_every_seconds:
            save_epoch(parts, state, self)
            self.last_written = time.monotonic()


def best_checkpoint(
    model: nn.Module, state: RunState, config: TrainingSettings, run_name: str
) -> dict:
    """The contents of `best.pt` for the epoch just recorded, with the weights copied to the CPU."""
    latest = state.history[-1]
    return {
        "model": {
            key: value.detach().to("cpu", copy=True) for key, value in model.state_dict().items()
        },
        "epoch": state.epoch,
        "val_mdice": latest["val_mdice"],
        "val_miou": latest["val_miou"],
        "config": config.model_dump(mode="json"),
        "run_name": run_name,
    }


def save_epoch(parts, state: RunState, writer: CheckpointWriter) -> None:
    """Write `best.pt` if a better epoch waits to be saved, then `last.pt` and `last.json`.

    best.pt goes first, so the best epoch recorded in last.pt always has its weights on disk.
    """
    run_dir = writer.run_dir
    if state.unsaved_best is not None:
        save_checkpoint(state.unsaved_best, run_dir / BEST_CHECKPOINT)
        state.unsaved_best = None
    last = {
        **parts.state_dict(),
        "epoch": state.epoch,
        "best_val_mdice": state.best_val_mdice,
        "best_epoch": state.best_epoch,
        "history": state.history,
        "config": writer.config.model_dump(mode="json"),
        "fingerprint": writer.fingerprint,
        "metadata": writer.metadata,
        "run_name": writer.run_name,
    }
    save_checkpoint(last, run_dir / LAST_CHECKPOINT)
    save_last_summary(last, run_dir / LAST_CHECKPOINT)


def load_best_model(model: nn.Module, run_dir_or_path: str | Path) -> nn.Module:
    """Load the weights of `best.pt` (a run folder or the file itself) into `model` and return it."""
    path = Path(run_dir_or_path)
    if path.is_dir():
        path = path / BEST_CHECKPOINT
    model.load_state_dict(load_checkpoint(path)["model"])
    return model


def save_last_summary(last: dict, last_path: Path) -> None:
    """Write `last.json` beside `last_path`: `last`'s LAST_SUMMARY_KEYS and the size and
    modification time of the `last.pt` just written, which it describes."""
    written = last_path.stat()
    summary = {key: last[key] for key in LAST_SUMMARY_KEYS if key in last}
    summary["last_pt"] = {"size": written.st_size, "mtime_ns": written.st_mtime_ns}
    text = json.dumps(summary, default=_plain)
    write_atomically(last_path.with_name(LAST_SUMMARY), lambda file: file.write(text.encode()))


def _plain(value: object) -> object:
    """A numpy or torch scalar as a Python number, for JSON."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} cannot be written to {LAST_SUMMARY}")


def last_progress(last_path: Path) -> dict:
    """`last.pt`'s LAST_SUMMARY_KEYS, read from `last.json` when that describes this very file
    (same size and modification time), else from `last.pt` itself (memory-mapped)."""
    summary_path = Path(last_path).with_name(LAST_SUMMARY)
    if summary_path.is_file():
        try:
            summary = json.loads(summary_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            summary = {}
        written = Path(last_path).stat()
        if summary.get("last_pt") == {"size": written.st_size, "mtime_ns": written.st_mtime_ns}:
            return summary
    return load_checkpoint(last_path, mmap=True)


def load_resumable(
    last_path: Path,
    config: TrainingSettings,
    inputs: dict | None = None,
    progress_only: bool = False,
) -> dict:
    """Read `last.pt` and refuse it unless this run's settings and inputs made it.

    Raises ChangedSettingsError naming each differing setting or input (dotted keys, e.g.
    `augmentation.rotate.p: 0.5 -> 0.3`). `progress_only` reads what `last_progress` gives,
    without the tensors, for a look at the run's progress.
    """
    checkpoint = last_progress(last_path) if progress_only else load_checkpoint(last_path)
    needed = LAST_SUMMARY_KEYS if progress_only else LAST_CHECKPOINT_KEYS
    missing = [key for key in needed if key != "metadata" and key not in checkpoint]
    if missing:
        raise CheckpointError(
            f"{last_path} is not a training checkpoint of this code (missing {missing}); "
            "delete it or use a new run directory."
        )
    saved = flatten(checkpoint["fingerprint"])
    current = flatten(json.loads(json.dumps(run_fingerprint(config, inputs))))
    differing = sorted(
        key for key in saved.keys() | current.keys() if saved.get(key) != current.get(key)
    )
    if differing:
        shown = "; ".join(
            f"{key}: {saved.get(key)!r} -> {current.get(key)!r}" for key in differing[:8]
        )
        more = f"; and {len(differing) - 8} more" if len(differing) > 8 else ""
        raise ChangedSettingsError(
            f"{last_path} was written with other settings or inputs ({shown}{more}). Only "
            f"{', '.join(sorted(RESUMABLE_CHANGES))} may change when resuming: set "
            "training.on_changed_settings: restart to move the old run to superseded/ and "
            "train afresh, or delete the run's folder."
        )
    if checkpoint["epoch"] > config.epochs:
        raise TrainedPastEpochsError(
            past_epochs_message(last_path, checkpoint["epoch"], config.epochs)
        )
    return checkpoint


def past_epochs_message(last_path: Path, trained: int, epochs: int) -> str:
    """Why a run trained for more epochs than `training.epochs` is refused, and what to do."""
    return (
        f"{last_path} holds {trained} epochs, more than training.epochs={epochs}: a longer run "
        f"than the one asked for, which is never passed off as it. To use it, ask for it "
        f"(--params training.epochs={trained}); to train {epochs} epochs afresh, set "
        "training.on_changed_settings: restart, which moves it to superseded/."
    )


def trained_epochs(last_path: Path) -> int | None:
    """The epochs a run's `last.pt` holds (see `last_progress`), None without one."""
    if not Path(last_path).is_file():
        return None
    return int(last_progress(last_path)["epoch"])


def flatten(settings: dict, prefix: str = "") -> dict:
    """Nested settings as dotted keys: {"a": {"b": 1}} -> {"a.b": 1}."""
    flat = {}
    for key, value in settings.items():
        if isinstance(value, dict) and value:
            flat |= flatten(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def supersede(run_dir: Path) -> Path:
    """Move a run's checkpoints and history into ``superseded/<UTC time>/``; return that folder."""
    target = run_dir / SUPERSEDED_FOLDER / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target.mkdir(parents=True, exist_ok=True)
    for name in (LAST_CHECKPOINT, LAST_SUMMARY, BEST_CHECKPOINT, HISTORY_FILE):
        if (run_dir / name).exists():
            (run_dir / name).replace(target / name)
    return target
