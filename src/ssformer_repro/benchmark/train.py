"""Training throughput: the study's training step against the official-style reference loop.

Each loop is measured in two modes:
- "compute": pre-made batches held in memory, so only the step itself (copy to the device,
  forward, loss, backward, optimiser) is timed; its TFLOP/s is the model's utilisation.
- "end_to_end": batches from the loop's own data path. The study's: the decoded cache read by
  `CachedSegmentationDataset` with the albumentations transform, in the DataLoader of
  `train_segmenter`. The reference's: JPEG files decoded and augmented with PIL every step.

The study's loop is `ssformer_repro.training.loop` itself: its `TrainingConfig` defaults (AdamW,
BCE + Dice, "auto" AMP and channels-last, i.e. bf16 and channels-last on CUDA, fused AdamW),
`RunParts.build` and `train_one_epoch`, given the benchmark's batches in place of an epoch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from ssformer_repro.benchmark.common import (
    BatchStream,
    BenchmarkSettings,
    StepRunner,
    images_per_second,
    interleaved_images_per_second,
    one_epoch,
)
from ssformer_repro.benchmark.reference import OfficialStyleDataset, ReferenceTrainer
from ssformer_repro.benchmark.workspace import Workspace
from ssformer_repro.models import build_model
from ssformer_repro.models.sizes import forward_gflops
from ssformer_repro.polyps.augment import build_train_transform
from ssformer_repro.polyps.torch_datasets import CachedSegmentationDataset
from ssformer_repro.training.distributed import DistributedContext
from ssformer_repro.training.loop import (
    Placement,
    RunParts,
    TrainingConfig,
    seed_everything,
    train_one_epoch,
)
from ssformer_repro.training.loss import build_loss

logger = logging.getLogger(__name__)

MODES = ("compute", "end_to_end")
BACKWARD_FACTOR = 3  # forward + backward of a step cost about 3 forward passes


def measure_training(
    backbone: str, head: str, settings: BenchmarkSettings, workspace: Workspace
) -> list[dict[str, Any]]:
    """Rows of images/s and TFLOP/s for both loops ("ours", "reference") in both modes.

    In "compute" mode the loops take turns repeat by repeat (fair on a shared machine); end to
    end, each loop is timed on its own so that its loader workers never prefetch unobserved.
    """
    seed_everything(settings.seed)
    gflops = forward_gflops(build_model(backbone, head).to(settings.device), settings.size)
    rows = []
    for mode in MODES:
        runs, descriptions = {}, {}
        for loop, build_runner in LOOPS.items():
            logger.info("Training %s-%s, %s loop, %s mode.", backbone, head, loop, mode)
            seed_everything(settings.seed)
            model = build_model(backbone, head)
            runs[loop], descriptions[loop] = build_runner(model, mode, settings, workspace)
        if mode == "compute":
            rates = interleaved_images_per_second(runs, settings)
        else:
            rates = {loop: images_per_second(run, settings) for loop, run in runs.items()}
        for loop in LOOPS:
            rows.append(
                {
                    "backbone": backbone,
                    "head": head,
                    "loop": loop,
                    "mode": mode,
                    **descriptions[loop],
                    "size": settings.size,
                    "batch_size": settings.batch_size,
                    "forward_gflops": gflops,
                    "images_per_second": rates[loop],
                    "tflops": _tflops(rates[loop], gflops),
                }
            )
        del runs  # frees the models, optimisers and loader workers before the next mode
    return rows


def _ours(
    model: nn.Module, mode: str, settings: BenchmarkSettings, workspace: Workspace
) -> tuple[StepRunner, dict[str, Any]]:
    """The study's training step, exactly as `train_segmenter` runs it."""
    config = TrainingConfig(
        epochs=1, batch_size=settings.batch_size, device=str(settings.device), seed=settings.seed
    )
    placement = Placement.for_config(config, DistributedContext())  # one process
    # As train_segmenter: inputs have one fixed size, so cuDNN may time and pick its kernels.
    torch.backends.cudnn.benchmark = settings.on_cuda
    parts = RunParts.build(model, config, placement)
    loss_fn = build_loss(config.loss)
    if mode == "compute":
        pairs = _random_batches(settings, pin=settings.on_cuda)
        take = _first_batches([{"image": images, "mask": masks} for images, masks in pairs])
    else:
        transform = build_train_transform({"image_size": settings.size}, seed=settings.seed)
        dataset = CachedSegmentationDataset.from_cache(
            workspace.decoded_cache(settings.size), transform
        )
        loader = DataLoader(
            one_epoch(dataset, settings.epoch_images),
            batch_size=settings.batch_size,
            shuffle=True,
            num_workers=settings.train_workers,
            pin_memory=settings.on_cuda,
            persistent_workers=settings.train_workers > 0,
            generator=parts.loader_generator,
            drop_last=True,  # full batches only, so every timed step has batch_size images
        )
        take = BatchStream(loader).take

    def run(n_batches: int) -> int:
        train_one_epoch(
            parts,
            parts.model,
            take(n_batches),
            loss_fn,
            placement,
            config.log_every,
            where="benchmark",
            show_progress=False,
        )
        return n_batches * settings.batch_size

    amp, optimizer = placement.amp, parts.optimizer.defaults
    channels_last = placement.memory_format == torch.channels_last
    description = {
        "precision": f"{str(amp.dtype).removeprefix('torch.')} autocast" if amp.enabled else "fp32",
        "memory_format": "channels_last" if channels_last else "NCHW",
        "optimizer": f"AdamW(fused={optimizer['fused']}, foreach={optimizer['foreach']})",
        "data": _data_description(mode, "decoded cache + albumentations", settings),
    }
    return run, description


def _reference(
    model: nn.Module, mode: str, settings: BenchmarkSettings, workspace: Workspace
) -> tuple[StepRunner, dict[str, Any]]:
    """The official-style step; end to end, its samples come from the JPEG files through PIL."""
    torch.backends.cudnn.benchmark = False  # the official script leaves it off
    trainer = ReferenceTrainer(model, settings.device)
    if mode == "compute":
        take = _first_batches(_random_batches(settings, pin=False))
    else:
        dataset = OfficialStyleDataset(
            workspace.manifest["image_path"], workspace.manifest["mask_path"], settings.size
        )
        loader = DataLoader(
            one_epoch(dataset, settings.epoch_images),
            batch_size=settings.batch_size,
            shuffle=True,
            num_workers=settings.train_workers,
            # The official loader restarts its workers every epoch; kept here, as in our loop,
            # so that the comparison does not hinge on the epoch length.
            persistent_workers=settings.train_workers > 0,
            drop_last=True,
        )
        take = BatchStream(loader).take

    def run(n_batches: int) -> int:
        return trainer.train(take(n_batches))

    description = {
        "precision": "fp32",
        "memory_format": "NCHW",
        "optimizer": "AdamW(fused=False, foreach=False)",
        "data": _data_description(mode, "JPEG files + PIL", settings),
    }
    return run, description


LOOPS: dict[str, Callable[..., tuple[StepRunner, dict[str, Any]]]] = {
    "ours": _ours,
    "reference": _reference,
}


def _random_batches(
    settings: BenchmarkSettings, pin: bool
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Enough (images, 0/1 masks) batches on the host for the warm-up and for one repeat."""
    generator = torch.Generator().manual_seed(settings.seed)
    shape = (settings.batch_size, 3, settings.size, settings.size)
    batches = []
    for _ in range(max(settings.steps, settings.warmup)):
        images = torch.randn(shape, generator=generator)
        masks = (torch.rand((shape[0], 1, *shape[2:]), generator=generator) > 0.5).float()
        batches.append((images.pin_memory(), masks.pin_memory()) if pin else (images, masks))
    return batches


def _first_batches(batches: list) -> Callable[[int], list]:
    """`take(n)`: the first n of the pre-made batches (each measurement reuses them)."""
    return lambda n_batches: batches[:n_batches]


def _data_description(mode: str, data_path: str, settings: BenchmarkSettings) -> str:
    if mode == "compute":
        return "in-memory batches"
    return f"{data_path}, {settings.train_workers} workers"


def _tflops(rates: dict[str, Any], gflops: float) -> dict[str, Any]:
    """Achieved training TFLOP/s: images/s x forward GFLOPs x 3 (forward + backward)."""
    scale = BACKWARD_FACTOR * gflops / 1e3
    return {
        key: [value * scale for value in values] if key == "values" else values * scale
        for key, values in rates.items()
    }


def speedups(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Ours / reference mean images/s for each backbone, head and mode measured with both."""
    means = {
        (row["backbone"], row["head"], row["mode"], row["loop"]): row["images_per_second"]["mean"]
        for row in rows
    }
    ratios = []
    for (backbone, head, mode, loop), reference in means.items():
        ours = means.get((backbone, head, mode, "ours"))
        if loop == "reference" and ours is not None:
            ratios.append(
                {"backbone": backbone, "head": head, "mode": mode, "speedup": ours / reference}
            )
    return ratios
