"""Training throughput: our step against the official-style loop (reference.py), in mode
"compute" (in-memory batches: the step alone) and "end_to_end" (each loop's own data path).
Our step is the training package's: `TrainingSettings` defaults, `RunParts`, `train_one_epoch`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ssformer_repro.benchmark import estimate
from ssformer_repro.benchmark.common import Run, StepRunner, batch_stream, images_per_second, table
from ssformer_repro.benchmark.data import training_dataset
from ssformer_repro.benchmark.reference import ReferenceTrainer
from ssformer_repro.benchmark.settings import BenchmarkSettings
from ssformer_repro.models import build_model
from ssformer_repro.models.sizes import forward_gflops_on_meta
from ssformer_repro.training.distributed import DistributedContext
from ssformer_repro.training.loop import train_one_epoch
from ssformer_repro.training.loss import build_loss
from ssformer_repro.training.parts import Placement, RunParts, seed_everything
from ssformer_repro.training.settings import TrainingSettings

logger = logging.getLogger(__name__)
Loop = tuple[StepRunner, dict[str, str]]  # the step, and its setup and data path in words


def measure(run: Run) -> dict[str, Any]:
    """Both loops in both modes for every model, then (unless --no-estimate) the estimate, whose
    grid is read first: a configuration error stops the run before any timing."""
    settings = run.settings
    grid = estimate.configured_grid(settings.project, settings.env) if settings.estimate else None
    rows = run.per_model(measure_training)
    return {"rows": rows, "estimate": estimate.estimate(rows, grid) if grid else None}


def measure_training(backbone: str, head: str, run: Run, settings: BenchmarkSettings) -> list:
    """Rows of images/s and TFLOP/s of both loops in both modes; ours with its speed-up."""
    gflops = forward_gflops_on_meta([backbone], [head], settings.size)[(backbone, head)]
    row = dict(backbone=backbone, head=head, size=settings.size, batch_size=settings.batch_size)
    rows = []
    for mode in ("compute", "end_to_end"):
        runners, described = {}, {}
        for loop, build_loop in LOOPS.items():
            logger.info("Training %s-%s, %s loop, %s mode.", backbone, head, loop, mode)
            seed_everything(settings.seed)
            runners[loop], words = build_loop(build_model(backbone, head), mode, settings, run)
            described[loop] = dict(loop=loop, mode=mode, **words, forward_gflops=gflops)
        if mode == "compute":  # the loops take turns, fair on a shared machine
            rates = images_per_second(runners, settings)
        else:  # each alone, so that its loader workers never prefetch unobserved
            rates = {k: images_per_second({k: step}, settings)[k] for k, step in runners.items()}
        for loop, rate in rates.items():
            tflops = rate["mean"] * estimate.BACKWARD_FACTOR * gflops / 1e3
            speedup = rate["mean"] / rates["reference"]["mean"] if loop == "ours" else None
            measured = dict(images_per_second=rate, tflops=tflops, speedup=speedup)
            rows.append(row | described[loop] | measured)
        del runners  # frees the models, optimisers and loader workers before the next mode
    return rows


def study_loop(
    model: nn.Module, mode: str, settings: BenchmarkSettings, run: Run | None, compile: bool = False
) -> Loop:
    """Our step as `train_segmenter` runs it (compiled if asked, as by the `compile` setting);
    end to end it reads `run`'s decoded cache."""
    config = TrainingSettings(
        epochs=1, batch_size=settings.batch_size, device=str(settings.device), seed=settings.seed
    )
    placement = Placement.for_config(config, DistributedContext())  # one process
    parts = RunParts.build(model, config, placement)
    forward = torch.compile(parts.model) if compile else parts.model
    loss_fn = build_loss(config.loss)
    if mode == "compute":
        take, data = _in_memory(settings, pin=settings.on_cuda, as_dicts=True), "in-memory batches"
    else:
        dataset = training_dataset(run, "decoded_cache")
        take = batch_stream(dataset, settings, settings.train_workers, pin=settings.on_cuda)
        data = f"decoded cache + albumentations, {settings.train_workers} workers"

    def step(n_batches: int) -> int:
        torch.backends.cudnn.benchmark = settings.on_cuda  # as train_segmenter: one input size
        batches, log_every = take(n_batches), config.log_every
        train_one_epoch(parts, forward, batches, loss_fn, placement, log_every, "benchmark", False)
        return n_batches * settings.batch_size

    amp, adamw = placement.amp, parts.optimizer.defaults
    precision = f"{str(amp.dtype).removeprefix('torch.')} autocast" if amp.enabled else "fp32"
    layout = "NCHW" if placement.memory_format == torch.preserve_format else "channels_last"
    setup = f"{precision}, {layout}, AdamW(fused={adamw['fused']}, foreach={adamw['foreach']})"
    return step, dict(setup=setup, data=data)


def _reference(model: nn.Module, mode: str, settings: BenchmarkSettings, run: Run | None) -> Loop:
    """The official-style step; end to end its samples come from the JPEG files through PIL."""
    trainer = ReferenceTrainer(model, settings.device)
    if mode == "compute":
        take, data = _in_memory(settings, pin=False, as_dicts=False), "in-memory batches"
    else:  # its workers persist, as in our loop (the official loader restarts them per epoch)
        dataset = training_dataset(run, "official_pil_files")
        take = batch_stream(dataset, settings, settings.train_workers)
        data = f"JPEG files + PIL, {settings.train_workers} workers"

    def step(n_batches: int) -> int:
        torch.backends.cudnn.benchmark = False  # the official script leaves it off
        return trainer.train(take(n_batches))

    return step, dict(setup="fp32, NCHW, AdamW(fused=False, foreach=False)", data=data)


LOOPS: dict[str, Callable[..., Loop]] = {"ours": study_loop, "reference": _reference}


def _in_memory(settings: BenchmarkSettings, pin: bool, as_dicts: bool) -> Callable[[int], list]:
    """`take(n)`: n of a few random (images, 0/1 masks) batches made on the host, cycling."""
    generator = torch.Generator().manual_seed(settings.seed)
    shape = (settings.batch_size, 3, settings.size, settings.size)
    batches = []
    for _ in range(max(settings.steps, settings.warmup)):
        images = torch.randn(shape, generator=generator)
        masks = (torch.rand((shape[0], 1, *shape[2:]), generator=generator) > 0.5).float()
        images, masks = (images.pin_memory(), masks.pin_memory()) if pin else (images, masks)
        batches.append({"image": images, "mask": masks} if as_dicts else (images, masks))
    return lambda n_batches: [batches[index % len(batches)] for index in range(n_batches)]


def markdown(result: dict[str, Any], results: dict[str, Any]) -> str:
    """The rows and, when made, the grid estimate."""
    settings = results["settings"]
    columns = "backbone, head, loop, mode, setup, data, size, batch_size, images_per_second"
    columns += ", tflops:TFLOP/s, speedup:ours / reference"
    text = (
        f"Mean ± standard deviation over {settings['repeats']} repeats of {settings['steps']} "
        f"steps, after {settings['warmup']} warm-up steps. TFLOP/s = images/s x forward FLOPs "
        "x 3 (matrix products, convolutions and attention only: torch's FlopCounterMode). The "
        f"batch is the one that fitted (halved after CUDA out-of-memory errors).\n\n"
        f"{table(result['rows'], columns)}"
    )
    grid = result["estimate"]
    return text if grid is None else f"{text}\n\n### Grid estimate\n\n{estimate.markdown(grid)}"
