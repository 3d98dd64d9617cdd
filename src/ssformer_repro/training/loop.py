"""The training loop of one segmentation run: `train_segmenter`, then the epoch it repeats.

AdamW, mixed precision on CUDA, validation every `val_every` epochs, atomic checkpoints
(`last.pt`, `best.pt`) and exact resume from `last.pt` (checkpoint.py); data-parallel over
several processes when torchrun starts it (distributed.py, docs/scaling.md). The settings are
`TrainingSettings` (settings.py); the parts of a run are `Placement` and `RunParts` (parts.py).
"""

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from ssformer_repro.storage.atomic import remove_partial_writes
from ssformer_repro.training.checkpoint import (
    BEST_CHECKPOINT,
    HISTORY_COLUMNS,
    LAST_CHECKPOINT,
    CheckpointWriter,
    RunRecord,
    RunState,
    restore,
)
from ssformer_repro.training.device import cpu_threads
from ssformer_repro.training.distributed import DistributedContext
from ssformer_repro.training.failures import applied_updates, count_skipped_steps
from ssformer_repro.training.loss import build_loss
from ssformer_repro.training.parts import Placement, RunParts, seed_everything
from ssformer_repro.training.settings import COMPILE_PAYS_BACK, TrainingSettings, resolve_auto

logger = logging.getLogger(__name__)


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


def train_segmenter(
    model: nn.Module,
    train_set: Dataset,
    val_set: Dataset,
    config: TrainingSettings,
    run_dir: str | Path,
    run_name: str,
    on_epoch_end: Callable[[dict], None] | None = None,
    inputs: dict | None = None,
    metadata: dict | None = None,
    record: RunRecord | None = None,
) -> TrainingResult:
    """Train `model` (in place), select the best epoch by validation mDice, checkpoint to `run_dir`.

    Datasets yield {"image": (3,S,S) float, "mask": (1,S,S) in {0,1}, "id": str}. If
    `run_dir/last.pt` exists with the same settings and `inputs` (what else the result depends
    on: model, augmentation, data, code; only `epochs` may grow), training resumes after its
    epoch; with num_workers=0 the result equals an uninterrupted run exactly. `metadata` (e.g.
    the MLflow run id) is stored in last.pt beside them. `record`: the run folder already
    judged for these settings and inputs (`RunRecord.judge`), else judged here. Torch uses
    `config.threads` CPU threads meanwhile.

    Under torchrun every process calls this with the same arguments (docs/scaling.md): each
    trains on its share of every global batch of `batch_size` images in DistributedDataParallel;
    rank 0 alone validates, writes files and calls `on_epoch_end`; all return the same result.
    """
    run_dir = Path(run_dir)
    for name, dataset in (("train_set", train_set), ("val_set", val_set)):
        if len(dataset) == 0:
            raise ValueError(f"run {run_name!r}: {name} is empty; training needs both splits.")
    context = DistributedContext.from_env()
    if context.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        remove_partial_writes(run_dir)  # left by a process killed while saving
    record = record or RunRecord.judge(run_dir, config, inputs)
    if record.action == "done":
        logger.info(
            "run %r: already trained for %d epochs; nothing to do.", run_name, config.epochs
        )
        return _result(record.progress_state(), run_dir)

    with cpu_threads(config.threads):
        placement = Placement.for_config(config, context)
        if placement.device.type == "cuda":
            # Inputs have one fixed size, so let cuDNN time and pick the fastest kernels.
            torch.backends.cudnn.benchmark = True
        seed_everything(config.seed)
        parts = RunParts.build(model, config, placement)
        state = restore(parts, record, run_name, context.is_main)
        on_cuda = placement.device.type == "cuda"
        train_loader, val_loader = make_loaders(train_set, val_set, config, context, parts, on_cuda)
        with context.process_group(config.distributed_backend, placement.device):
            # `parts.model` is the raw model (validated, saved); `model` is what training calls.
            model = training_model(parts.model, config, context, placement.device)
            epoch_step = EpochStep(
                parts, model, build_loss(config.loss), placement, config, context
            )
            checkpoints = CheckpointWriter(
                run_dir, config, run_name, record.fingerprint, metadata or {}
            )
            for epoch in range(state.epoch + 1, config.epochs + 1):
                where = f"run {run_name!r} ({run_dir}), epoch {epoch}/{config.epochs}"
                row = epoch_step(epoch, train_loader, val_loader, where)
                improved = state.record(row)
                if context.is_main:
                    checkpoints.after_epoch(parts, state, improved)
                    _log_epoch(run_name, config.epochs, row)
                    if on_epoch_end is not None:
                        on_epoch_end(dict(row))
                context.barrier()  # the others wait until rank 0 has saved this epoch
        return _result(state, run_dir)


@dataclass
class EpochStep:
    """One epoch of a run: train on every batch, step the schedule, validate when due."""

    parts: RunParts
    model: nn.Module  # `parts.model`, or it wrapped in DDP / torch.compile
    loss_fn: nn.Module
    placement: Placement
    config: TrainingSettings
    context: DistributedContext

    def __call__(
        self, epoch: int, train_loader: DataLoader, val_loader: DataLoader, where: str
    ) -> dict:
        """Run epoch `epoch` and return its history row (the columns of HISTORY_COLUMNS)."""
        parts, config, context, placement = self.parts, self.config, self.context, self.placement
        started = time.perf_counter()
        train_loader.sampler.set_epoch(epoch)
        if context.is_distributed:
            # Ranks must draw different augmentations; seeding per epoch also makes resume
            # exact without storing every rank's RNG state.
            rank_seed = context.rank_seed(config.seed, epoch)
            seed_everything(rank_seed)
            parts.loader_generator.manual_seed(rank_seed)
        lr = parts.optimizer.param_groups[0]["lr"]
        updates_before = applied_updates(parts.optimizer)
        train_loss, images_per_second = train_one_epoch(
            parts,
            self.model,
            train_loader,
            self.loss_fn,
            placement,
            config.log_every,
            where=where,
            show_progress=context.is_main,
        )
        parts.scheduler.step()
        val_mdice = val_miou = math.nan
        if (epoch % config.val_every == 0 or epoch == config.epochs) and context.is_main:
            val_mdice, val_miou = validate(parts.model, val_loader, placement, config.val_threshold)
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
        return context.broadcast_from_main(row)


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
def validate(
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


def make_loaders(
    train_set: Dataset,
    val_set: Dataset,
    config: TrainingSettings,
    context: DistributedContext,
    parts: RunParts,
    on_cuda: bool,
) -> tuple[DataLoader, DataLoader]:
    """The training loader (this process's share of each global batch) and the validation one."""
    options = {
        "batch_size": context.per_process_batch_size(config.batch_size),
        "num_workers": config.num_workers,
        "pin_memory": resolve_auto(config.pin_memory, on_cuda),
        "persistent_workers": config.num_workers > 0,
    }
    # One seeded permutation per epoch, dealt to the processes (all of it to a single process);
    # torch seeds python, numpy and torch in each worker from the loader's generator.
    sampler = context.sampler_for(train_set, config.seed)
    train_loader = DataLoader(
        train_set, sampler=sampler, generator=parts.loader_generator, **options
    )
    return train_loader, DataLoader(val_set, shuffle=False, **options)


def training_model(
    raw_model: nn.Module,
    config: TrainingSettings,
    context: DistributedContext,
    device: torch.device,
) -> nn.Module:
    """`raw_model` as training calls it: in DDP under torchrun, compiled when `compile` is on.

    Validation and checkpoints use `raw_model` itself, so saved keys have no `_orig_mod.` prefix.
    """
    model = context.wrap_model(raw_model, device)
    if resolve_auto(config.compile, COMPILE_PAYS_BACK):
        model = torch.compile(model)
    return model


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


def _result(state: RunState, run_dir: Path) -> TrainingResult:
    return TrainingResult(
        history=pd.DataFrame(state.history, columns=HISTORY_COLUMNS),
        best_checkpoint=run_dir / BEST_CHECKPOINT,
        last_checkpoint=run_dir / LAST_CHECKPOINT,
        best_epoch=state.best_epoch,
        best_val_mdice=state.best_val_mdice,
    )
