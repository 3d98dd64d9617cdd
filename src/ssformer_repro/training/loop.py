"""Training of one segmentation run: AdamW, mixed precision on CUDA, per-epoch validation, atomic
checkpoints (`last.pt`, `best.pt`) and exact resume from `last.pt`; data-parallel over several
processes when torchrun starts it (distributed.py, docs/scaling.md).

`train_segmenter` is the entry point. `Placement`, `RunParts` and `train_one_epoch` are its
building blocks, public so that the benchmark (ssformer_repro.benchmark) times this very step.
"""

import logging
import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from ssformer_repro.atomic_files import remove_partial_writes, write_atomically
from ssformer_repro.training.checkpoint import (
    CheckpointError,
    capture_rng_state,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
)
from ssformer_repro.training.device import AMP_MODES, AmpSettings, amp_settings, resolve_device
from ssformer_repro.training.distributed import BACKEND_CHOICES, DistributedContext
from ssformer_repro.training.failures import applied_updates, count_skipped_steps
from ssformer_repro.training.loss import LOSSES, build_loss
from ssformer_repro.training.schedules import SCHEDULERS, build_scheduler

logger = logging.getLogger(__name__)

LAST_CHECKPOINT = "last.pt"
BEST_CHECKPOINT = "best.pt"
HISTORY_FILE = "history.csv"
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
)
AUTO = "auto"
CHANGED_SETTINGS_POLICIES = ("refuse", "restart")
# Settings that may differ from those of the last.pt being resumed.
RESUMABLE_CHANGES = frozenset({"epochs", "on_changed_settings", "checkpoint_every_seconds"})
SUPERSEDED_FOLDER = "superseded"
# What compile: "auto" means on every device, until a measurement shows compiling pays back.
COMPILE_PAYS_BACK = False


@dataclass(frozen=True)
class TrainingConfig:
    """Settings of one training run; "auto" follows the device (on for CUDA, off for CPU) except
    for `compile`, whose "auto" is off everywhere (see its comment)."""

    epochs: int
    batch_size: int
    lr: float = 1e-4
    weight_decay: float = 0.01  # AdamW's default, which the official code keeps
    # The report's schedule: PolynomialLRDecay over 40 epochs down to 1e-4, power 1.
    scheduler: dict = field(
        default_factory=lambda: {"name": "poly", "max_decay_steps": 40, "end_learning_rate": 1e-4}
    )
    loss: dict = field(default_factory=lambda: {"name": "bce_dice"})
    num_workers: int = 0
    seed: int = 0
    device: str = AUTO
    amp: str = AUTO
    channels_last: bool | str = AUTO
    pin_memory: bool | str = AUTO
    # torch.compile of the training forward. "auto" is off on every device: on the CPU compiling
    # takes minutes and pays back only after thousands of steps (docs/benchmarks.md);
    # on CUDA it stays off until a GPU measurement shows it pays within a run.
    compile: bool | str = AUTO
    val_threshold: float = 0.5
    val_every: int = 1
    log_every: int = 10
    # Write last.pt, best.pt and history.csv after an epoch only when this many seconds have
    # passed since the last write, and always after the final epoch: a crash loses at most this
    # much training. 0 writes after every epoch. Saving a MiT-B5 run (weights and AdamW state)
    # writes about 1 GB, so every epoch would cost seconds of each short GPU epoch.
    checkpoint_every_seconds: float = 0.0
    # Under torchrun: "auto" is NCCL on CUDA, Gloo on the CPU (docs/scaling.md).
    distributed_backend: str = AUTO
    # Identifies the run's inputs (DVC passes a fingerprint of its stage inputs): a last.pt made
    # from other inputs is not resumed.
    resume_key: str | None = None
    # When last.pt was made with other settings: "refuse" (stop and say so) or "restart" (move
    # last.pt, best.pt and history.csv to superseded/<time>/ and train from scratch).
    on_changed_settings: str = "refuse"

    def __post_init__(self) -> None:
        for name, (is_valid, requirement) in _SETTING_CHECKS.items():
            value = getattr(self, name)
            if not is_valid(value):
                raise ValueError(f"training setting {name} must be {requirement}, got {value!r}.")

    @classmethod
    def from_dict(cls, settings: Mapping) -> "TrainingConfig":
        """Build from a parameters mapping, refusing keys that are not settings (typos)."""
        valid = [setting.name for setting in fields(cls)]
        unknown = sorted(set(settings) - set(valid))
        if unknown:
            raise ValueError(
                f"unknown training setting(s) {unknown}; valid settings: {', '.join(valid)}."
            )
        missing = sorted({"epochs", "batch_size"} - set(settings))
        if missing:
            raise ValueError(f"training settings lack required key(s) {missing}.")
        return cls(**settings)

    def to_dict(self) -> dict:
        """Plain-dict copy (stored in checkpoints and compared on resume)."""
        return asdict(self)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_bool_or_auto(value: object) -> bool:
    return isinstance(value, bool) or value == AUTO


def _names_one_of(registry: Mapping) -> Callable[[object], bool]:
    return lambda value: isinstance(value, Mapping) and value.get("name") in registry


_SETTING_CHECKS: dict[str, tuple[Callable[[object], bool], str]] = {
    "epochs": (lambda value: _is_int(value) and value > 0, "a positive integer"),
    "batch_size": (lambda value: _is_int(value) and value > 0, "a positive integer"),
    "lr": (lambda value: _is_number(value) and value > 0, "a number > 0"),
    "weight_decay": (lambda value: _is_number(value) and value >= 0, "a number >= 0"),
    "scheduler": (
        _names_one_of(SCHEDULERS),
        f"a mapping with 'name' one of {list(SCHEDULERS)} plus that schedule's options",
    ),
    "loss": (
        _names_one_of(LOSSES),
        f"a mapping with 'name' one of {list(LOSSES)} plus that loss's options",
    ),
    "num_workers": (lambda value: _is_int(value) and value >= 0, "an integer >= 0"),
    "seed": (lambda value: _is_int(value) and value >= 0, "an integer >= 0"),
    "device": (lambda value: isinstance(value, str), "'auto', 'cpu', 'cuda' or 'cuda:N'"),
    "amp": (lambda value: value in AMP_MODES, f"one of {list(AMP_MODES)}"),
    "channels_last": (_is_bool_or_auto, "true, false or 'auto'"),
    "pin_memory": (_is_bool_or_auto, "true, false or 'auto'"),
    "compile": (_is_bool_or_auto, "true, false or 'auto'"),
    "val_threshold": (lambda value: _is_number(value) and 0 < value < 1, "a number in (0, 1)"),
    "val_every": (lambda value: _is_int(value) and value > 0, "a positive integer"),
    "log_every": (lambda value: _is_int(value) and value > 0, "a positive integer"),
    "checkpoint_every_seconds": (lambda value: _is_number(value) and value >= 0, "a number >= 0"),
    "distributed_backend": (lambda value: value in BACKEND_CHOICES, f"one of {BACKEND_CHOICES}"),
    "resume_key": (lambda value: value is None or isinstance(value, str), "null or a string"),
    "on_changed_settings": (
        lambda value: value in CHANGED_SETTINGS_POLICIES,
        f"one of {CHANGED_SETTINGS_POLICIES}",
    ),
}


@dataclass(frozen=True)
class TrainingResult:
    """What a finished run leaves: its per-epoch history and checkpoints, and the best epoch."""

    history: pd.DataFrame
    best_checkpoint: Path
    last_checkpoint: Path
    best_epoch: int
    best_val_mdice: float


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite."""


@dataclass
class _RunState:
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


@dataclass(frozen=True)
class Placement:
    """Where batches run: the device, its autocast settings and the memory format of images."""

    device: torch.device
    amp: AmpSettings
    memory_format: torch.memory_format

    @classmethod
    def for_config(cls, config: TrainingConfig, context: DistributedContext) -> "Placement":
        """Resolve the device (this process's GPU under torchrun), AMP and channels-last."""
        device = context.device_for(resolve_device(config.device))
        channels_last = _resolve_auto(config.channels_last, device.type == "cuda")
        return cls(
            device=device,
            amp=amp_settings(device, config.amp),
            memory_format=torch.channels_last if channels_last else torch.preserve_format,
        )

    def batch(self, batch: Mapping) -> tuple[torch.Tensor, torch.Tensor]:
        """Images and masks of a batch dict, copied to the device."""
        images = batch["image"].to(self.device, non_blocking=True, memory_format=self.memory_format)
        masks = batch["mask"].to(self.device, non_blocking=True)
        return images, masks

    def autocast(self) -> torch.autocast:
        """Autocast context for the forward pass (disabled on CPU)."""
        return torch.autocast(self.device.type, dtype=self.amp.dtype, enabled=self.amp.enabled)


@dataclass
class RunParts:
    """The stateful parts of a run, saved to and restored from `last.pt` together."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    loader_generator: torch.Generator

    @classmethod
    def build(cls, model: nn.Module, config: TrainingConfig, placement: Placement) -> "RunParts":
        """Move the model to the device and build AdamW, the schedule and the gradient scaler."""
        on_cuda = placement.device.type == "cuda"
        model.to(placement.device, memory_format=placement.memory_format)
        optimizer = torch.optim.AdamW(
            model.parameters(), lr=config.lr, weight_decay=config.weight_decay, fused=on_cuda
        )
        return cls(
            model=model,
            optimizer=optimizer,
            scheduler=build_scheduler(optimizer, config.scheduler),
            scaler=torch.amp.GradScaler(
                placement.device.type, enabled=placement.amp.use_grad_scaler
            ),
            loader_generator=torch.Generator().manual_seed(config.seed),
        )

    def state_dict(self) -> dict:
        """States of all parts plus the global RNGs, as stored in `last.pt`."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "grad_scaler": self.scaler.state_dict(),
            "rng": capture_rng_state(),
            "loader_rng": self.loader_generator.get_state(),
        }

    def load_state_dict(self, checkpoint: Mapping) -> None:
        """Restore what `state_dict` stored (the scheduler after the optimizer, as torch advises)."""
        self.model.load_state_dict(checkpoint["model"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.scheduler.load_state_dict(checkpoint["scheduler"])
        self.scaler.load_state_dict(checkpoint["grad_scaler"])
        restore_rng_state(checkpoint["rng"])
        self.loader_generator.set_state(checkpoint["loader_rng"])


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA); call it before building the model, too."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def train_segmenter(
    model: nn.Module,
    train_set: Dataset,
    val_set: Dataset,
    config: TrainingConfig,
    run_dir: str | Path,
    run_name: str,
    on_epoch_end: Callable[[dict], None] | None = None,
) -> TrainingResult:
    """Train `model` (in place), select the best epoch by validation mDice, checkpoint to `run_dir`.

    Datasets yield {"image": (3,S,S) float, "mask": (1,S,S) in {0,1}, "id": str}. If
    `run_dir/last.pt` exists with the same config (only `epochs` may grow), training resumes
    after its epoch; with num_workers=0 the result equals an uninterrupted run exactly.

    Under torchrun every process calls this with the same arguments (docs/scaling.md): each
    trains on its share of every global batch of `batch_size` images in DistributedDataParallel;
    rank 0 alone validates, writes files and calls `on_epoch_end`; all return the same result.
    """
    run_dir = Path(run_dir)
    last_path, best_path = run_dir / LAST_CHECKPOINT, run_dir / BEST_CHECKPOINT
    for name, dataset in (("train_set", train_set), ("val_set", val_set)):
        if len(dataset) == 0:
            raise ValueError(f"run {run_name!r}: {name} is empty; training needs both splits.")
    context = DistributedContext.from_env()
    if context.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        remove_partial_writes(run_dir)  # left by a process killed while saving

    placement = Placement.for_config(config, context)
    on_cuda = placement.device.type == "cuda"
    if on_cuda:
        # Inputs have one fixed size, so let cuDNN time and pick the fastest kernels.
        torch.backends.cudnn.benchmark = True
    seed_everything(config.seed)
    parts = RunParts.build(model, config, placement)
    loss_fn = build_loss(config.loss)

    state = (
        _resume(parts, last_path, config, run_name, context.is_main)
        if last_path.exists()
        else _RunState()
    )
    if state.epoch == config.epochs:
        logger.info("run %r: already trained for %d epochs; nothing to do.", run_name, state.epoch)
        return _result(state, best_path, last_path)

    train_loader, val_loader = _loaders(train_set, val_set, config, context, parts, on_cuda)
    train_sampler = train_loader.sampler

    with context.process_group(config.distributed_backend, placement.device):
        train_model = _training_model(parts.model, config, context, placement.device)
        checkpoints = _Checkpoints(run_dir, config, run_name)
        for epoch in range(state.epoch + 1, config.epochs + 1):
            started = time.perf_counter()
            train_sampler.set_epoch(epoch)
            if context.is_distributed:
                # Ranks must draw different augmentations; seeding per epoch also makes resume
                # exact without storing every rank's RNG state.
                rank_seed = context.rank_seed(config.seed, epoch)
                seed_everything(rank_seed)
                parts.loader_generator.manual_seed(rank_seed)
            lr = parts.optimizer.param_groups[0]["lr"]
            where = f"run {run_name!r} ({run_dir}), epoch {epoch}/{config.epochs}"
            updates_before = applied_updates(parts.optimizer)
            train_loss, images_per_second = train_one_epoch(
                parts,
                train_model,
                train_loader,
                loss_fn,
                placement,
                config.log_every,
                where=where,
                show_progress=context.is_main,
            )
            parts.scheduler.step()
            val_mdice = val_miou = math.nan
            validate = epoch % config.val_every == 0 or epoch == config.epochs
            if validate and context.is_main:
                val_mdice, val_miou = _validate(
                    parts.model, val_loader, placement, config.val_threshold
                )
            row = {
                "epoch": epoch,
                "lr": float(lr),
                "train_loss": context.mean(train_loss, placement.device),
                "val_mdice": val_mdice,
                "val_miou": val_miou,
                "images_per_second": context.sum(images_per_second, placement.device),
                "epoch_seconds": time.perf_counter() - started,
                "skipped_steps": count_skipped_steps(
                    parts.optimizer, updates_before, len(train_loader), where
                ),
            }
            row = context.broadcast_from_main(row)
            improved = state.record(row)
            if context.is_main:
                checkpoints.after_epoch(parts, state, improved)
                _log_epoch(run_name, config.epochs, row)
                if on_epoch_end is not None:
                    on_epoch_end(dict(row))
            context.barrier()  # the others wait until rank 0 has saved this epoch

    return _result(state, best_path, last_path)


def _loaders(
    train_set: Dataset,
    val_set: Dataset,
    config: TrainingConfig,
    context: DistributedContext,
    parts: RunParts,
    on_cuda: bool,
) -> tuple[DataLoader, DataLoader]:
    """The training loader (this process's share of each global batch) and the validation one."""
    options = {
        "batch_size": context.per_process_batch_size(config.batch_size),
        "num_workers": config.num_workers,
        "pin_memory": _resolve_auto(config.pin_memory, on_cuda),
        "persistent_workers": config.num_workers > 0,
    }
    # One seeded permutation per epoch, dealt to the processes (all of it to a single process);
    # torch seeds python, numpy and torch in each worker from the loader's generator.
    sampler = context.sampler_for(train_set, config.seed)
    train_loader = DataLoader(
        train_set, sampler=sampler, generator=parts.loader_generator, **options
    )
    return train_loader, DataLoader(val_set, shuffle=False, **options)


def _training_model(
    model: nn.Module, config: TrainingConfig, context: DistributedContext, device: torch.device
) -> nn.Module:
    """`model` as training calls it: in DDP under torchrun, compiled when `compile` is on.

    Validation and checkpoints use `model` itself, so saved keys have no `_orig_mod.` prefix.
    """
    train_model = context.wrap_model(model, device)
    if _resolve_auto(config.compile, COMPILE_PAYS_BACK):
        train_model = torch.compile(train_model)
    return train_model


class ChangedSettingsError(ValueError):
    """`last.pt` was written with other settings or inputs than this run's."""


def _resume(
    parts: RunParts, last_path: Path, config: TrainingConfig, run_name: str, is_main: bool
) -> _RunState:
    """Restore `parts` from `last.pt` and return the progress it holds.

    With ``on_changed_settings: restart``, a `last.pt` of other settings is moved aside (never
    deleted) and training starts from scratch.
    """
    try:
        checkpoint = _load_resumable(last_path, config)
    except ChangedSettingsError as error:
        if config.on_changed_settings != "restart":
            raise
        if is_main:
            superseded = _supersede(last_path.parent)
            logger.warning(
                "run %r: %s Moved to %s; training from scratch.", run_name, error, superseded
            )
        return _RunState()
    parts.load_state_dict(checkpoint)
    logger.info(
        "run %r: resuming from %s after epoch %d.", run_name, last_path, checkpoint["epoch"]
    )
    return _RunState(
        epoch=checkpoint["epoch"],
        best_val_mdice=checkpoint["best_val_mdice"],
        best_epoch=checkpoint["best_epoch"],
        history=list(checkpoint["history"]),
    )


def _log_epoch(run_name: str, epochs: int, row: dict) -> None:
    logger.info(
        "run %r epoch %d/%d: lr %.3g, train loss %.4f, val mDice %.4f, mIoU %.4f, %.1f img/s",
        run_name,
        row["epoch"],
        epochs,
        row["lr"],
        row["train_loss"],
        row["val_mdice"],
        row["val_miou"],
        row["images_per_second"],
    )


@dataclass
class _Checkpoints:
    """Writes a run's files after an epoch once `checkpoint_every_seconds` have passed since the
    last write, and after the final epoch."""

    run_dir: Path
    config: TrainingConfig
    run_name: str
    last_written: float = field(default_factory=time.monotonic)

    def after_epoch(self, parts: RunParts, state: _RunState, improved: bool) -> None:
        """Keep a copy of the weights if this epoch is the best, and write the files when due."""
        if improved:
            state.unsaved_best = _best_checkpoint(parts.model, state, self.config, self.run_name)
        waited = time.monotonic() - self.last_written
        if state.epoch == self.config.epochs or waited >= self.config.checkpoint_every_seconds:
            _save_epoch(parts, state, self.config, self.run_dir, self.run_name)
            self.last_written = time.monotonic()


def _best_checkpoint(
    model: nn.Module, state: _RunState, config: TrainingConfig, run_name: str
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
        "config": config.to_dict(),
        "run_name": run_name,
    }


def _save_epoch(
    parts: RunParts, state: _RunState, config: TrainingConfig, run_dir: Path, run_name: str
) -> None:
    """Write `best.pt` if a better epoch waits to be saved, then `last.pt` and `history.csv`.

    best.pt goes first, so the best epoch recorded in last.pt always has its weights on disk.
    """
    if state.unsaved_best is not None:
        save_checkpoint(state.unsaved_best, run_dir / BEST_CHECKPOINT)
        state.unsaved_best = None
    last = {
        **parts.state_dict(),
        "epoch": state.epoch,
        "best_val_mdice": state.best_val_mdice,
        "best_epoch": state.best_epoch,
        "history": state.history,
        "config": config.to_dict(),
        "run_name": run_name,
    }
    save_checkpoint(last, run_dir / LAST_CHECKPOINT)
    history_csv = pd.DataFrame(state.history, columns=HISTORY_COLUMNS).to_csv(index=False)
    write_atomically(run_dir / HISTORY_FILE, lambda file: file.write(history_csv.encode()))


def load_best_model(model: nn.Module, run_dir_or_path: str | Path) -> nn.Module:
    """Load the weights of `best.pt` (a run folder or the file itself) into `model` and return it."""
    path = Path(run_dir_or_path)
    if path.is_dir():
        path = path / BEST_CHECKPOINT
    model.load_state_dict(load_checkpoint(path)["model"])
    return model


def _resolve_auto(setting: bool | str, auto_value: bool) -> bool:
    return auto_value if setting == AUTO else bool(setting)


def _load_resumable(last_path: Path, config: TrainingConfig) -> dict:
    """Read `last.pt` and refuse it unless it was written by this run's configuration."""
    checkpoint = load_checkpoint(last_path)
    missing = [key for key in LAST_CHECKPOINT_KEYS if key not in checkpoint]
    if missing:
        raise CheckpointError(
            f"{last_path} is not a training checkpoint of this code (missing {missing}); "
            "delete it or use a new run directory."
        )
    saved, current = checkpoint["config"], config.to_dict()
    differing = sorted(
        key
        for key in (saved.keys() | current.keys()) - RESUMABLE_CHANGES
        if saved.get(key) != current.get(key)
    )
    if differing:
        changes = "; ".join(
            f"{key}: {saved.get(key)!r} -> {current.get(key)!r}" for key in differing
        )
        raise ChangedSettingsError(
            f"{last_path} was written with a different training configuration ({changes}). "
            "Only epochs may change when resuming: delete that file to start over, use a new "
            "run directory, or set training.on_changed_settings: restart."
        )
    if checkpoint["epoch"] > config.epochs:
        raise ValueError(
            f"{last_path} already holds {checkpoint['epoch']} epochs, more than epochs="
            f"{config.epochs}; raise epochs, or use a new run directory."
        )
    return checkpoint


def _supersede(run_dir: Path) -> Path:
    """Move a run's checkpoints and history into ``superseded/<UTC time>/``; return that folder."""
    target = run_dir / SUPERSEDED_FOLDER / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target.mkdir(parents=True, exist_ok=True)
    for name in (LAST_CHECKPOINT, BEST_CHECKPOINT, HISTORY_FILE):
        if (run_dir / name).exists():
            (run_dir / name).replace(target / name)
    return target


def train_one_epoch(
    parts: RunParts,
    model: nn.Module,
    loader: DataLoader,
    loss_fn: nn.Module,
    placement: Placement,
    log_every: int,
    where: str,
    show_progress: bool,
) -> tuple[float, float]:
    """One pass over the training loader with `model` (`parts.model`, or it in DDP); returns the
    mean batch loss and the images per second of this process."""
    optimizer, scaler = parts.optimizer, parts.scaler
    model.train()
    pending_losses: list[torch.Tensor] = []  # checked every `log_every` steps, saving GPU syncs
    loss_sum, images_seen = 0.0, 0
    started = time.perf_counter()
    progress = tqdm(
        loader, desc=where, unit="batch", leave=False, disable=None if show_progress else True
    )
    for step, batch in enumerate(progress, start=1):
        images, masks = placement.batch(batch)
        with placement.autocast():
            logits = model(images)
        loss = loss_fn(logits, masks)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        pending_losses.append(loss.detach())
        images_seen += len(images)

        if step % log_every == 0 or step == len(loader):
            losses = torch.stack(pending_losses).cpu()
            not_finite = torch.nonzero(~torch.isfinite(losses)).flatten()
            if len(not_finite) > 0:
                first = int(not_finite[0])
                raise NonFiniteLossError(
                    f"{where}: the loss is {losses[first].item()} at step "
                    f"{step - len(losses) + 1 + first} of {len(loader)}. Training stopped; "
                    f"{LAST_CHECKPOINT} in the run directory holds the last saved epoch. "
                    "Lower the learning rate, set amp to 'off', or check the inputs."
                )
            loss_sum += losses.sum().item()
            pending_losses.clear()
            images_per_second = images_seen / (time.perf_counter() - started)
            progress.set_postfix(loss=f"{loss_sum / step:.4f}", img_s=f"{images_per_second:.1f}")
    return loss_sum / len(loader), images_seen / (time.perf_counter() - started)


@torch.inference_mode()
def _validate(
    model: nn.Module, loader: DataLoader, placement: Placement, threshold: float
) -> tuple[float, float]:
    """Mean per-image foreground Dice and IoU of sigmoid(logits) > threshold on the loader."""
    from ssformer_repro.evaluation.metrics import dice_iou

    model.eval()
    dice_scores, iou_scores = [], []
    for batch in loader:
        images, masks = placement.batch(batch)
        with placement.autocast():
            logits = model(images)
        dice, iou = dice_iou(torch.sigmoid(logits.float()) > threshold, masks > 0.5)
        dice_scores.append(dice)
        iou_scores.append(iou)
    return torch.cat(dice_scores).mean().item(), torch.cat(iou_scores).mean().item()


def _result(state: _RunState, best_path: Path, last_path: Path) -> TrainingResult:
    return TrainingResult(
        history=pd.DataFrame(state.history, columns=HISTORY_COLUMNS),
        best_checkpoint=best_path,
        last_checkpoint=last_path,
        best_epoch=state.best_epoch,
        best_val_mdice=state.best_val_mdice,
    )
