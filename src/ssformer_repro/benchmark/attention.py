"""MiT attention, manual (smp) vs SDPA, and torch.compile on vs off: training-step speed.

    python -m ssformer_repro.benchmark.attention --device cpu --size 128 \\
        --backbones mit_b0,mit_b2 --steps 5

Times forward + backward of the encoder alone and a full training step (forward, BCE+Dice loss,
backward, AdamW) of `<backbone> + sed`, manual and SDPA alternating within one process so that
load on a shared machine hits both alike. torch.compile is timed from the start (compile time
included in the first step) and in the steady state, giving the steps after which it pays back.
Prints a markdown report.
"""

from __future__ import annotations

import argparse
import copy
import math
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ssformer_repro.models.backbones import MIT_ATTENTION, build_backbone, get_backbone_spec
from ssformer_repro.models.heads import build_head
from ssformer_repro.models.segmenter import Segmenter
from ssformer_repro.training.loss import build_loss

HEAD = "sed"
Step = Callable[[], None]


@dataclass(frozen=True)
class Settings:
    """Command-line settings of the benchmark."""

    device: torch.device
    size: int
    backbones: tuple[str, ...]
    steps: int
    warmup: int
    repeats: int
    batch_size: int
    compile_backbone: str | None
    compile_steps: int


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so that wall-clock times cover it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def encoder_step(backbone: nn.Module, images: torch.Tensor) -> Step:
    """Forward + backward of the backbone alone (gradients of the sum of its feature means)."""

    def step() -> None:
        backbone.zero_grad(set_to_none=True)
        sum(feature.mean() for feature in backbone(images)).backward()

    return step


def training_step(model: nn.Module, images: torch.Tensor, masks: torch.Tensor) -> Step:
    """One training step as in training/loop.py: forward, BCE+Dice, backward, AdamW."""
    loss_fn = build_loss({"name": "bce_dice"})
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(images), masks).backward()
        optimizer.step()

    return step


def seconds_per_step(step: Step, steps: int, device: torch.device) -> float:
    """Mean wall-clock seconds of `steps` calls of `step`."""
    synchronize(device)
    started = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize(device)
    return (time.perf_counter() - started) / steps


def compare_alternating(steps: dict[str, Step], settings: Settings) -> dict[str, float]:
    """Median images/s of each step, timed in turns (A, B, A, B, ...) after a warm-up of each."""
    for step in steps.values():
        seconds_per_step(step, settings.warmup, settings.device)
    rates: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(settings.repeats):
        for name, step in steps.items():
            seconds = seconds_per_step(step, settings.steps, settings.device)
            rates[name].append(settings.batch_size / seconds)
    return {name: statistics.median(values) for name, values in rates.items()}


def sed_model(backbone: nn.Module, name: str) -> nn.Module:
    """`backbone` with a SeD head of the backbone's sizes."""
    spec = get_backbone_spec(name)
    return Segmenter(backbone, build_head(HEAD, spec.channels, spec.embed_dim))


def measure_attention(name: str, settings: Settings) -> dict[str, object]:
    """Images/s of manual and SDPA attention for one MiT size: encoder and full training step."""
    torch.manual_seed(0)
    manual = build_backbone(name, attention="manual").to(settings.device)
    sdpa = copy.deepcopy(manual)
    MIT_ATTENTION["sdpa"](sdpa.encoder)
    images = torch.randn(settings.batch_size, 3, settings.size, settings.size)
    images = images.to(settings.device)
    masks = (torch.rand(settings.batch_size, 1, settings.size, settings.size) > 0.5).float()
    masks = masks.to(settings.device)
    encoder_rates = compare_alternating(
        {"manual": encoder_step(manual, images), "sdpa": encoder_step(sdpa, images)}, settings
    )
    model_rates = compare_alternating(
        {
            "manual": training_step(sed_model(manual, name), images, masks),
            "sdpa": training_step(sed_model(sdpa, name), images, masks),
        },
        settings,
    )
    return {"backbone": name, "encoder": encoder_rates, "training_step": model_rates}


def measure_compile(name: str, settings: Settings) -> dict[str, float]:
    """Eager vs compiled training step of `<name> + sed` (SDPA): first step, steady state."""
    images = torch.randn(settings.batch_size, 3, settings.size, settings.size)
    images = images.to(settings.device)
    masks = (torch.rand(settings.batch_size, 1, settings.size, settings.size) > 0.5).float()
    masks = masks.to(settings.device)
    result: dict[str, float] = {}
    for mode in ("eager", "compiled"):
        torch.manual_seed(0)
        torch._dynamo.reset()
        model = sed_model(build_backbone(name), name).to(settings.device)
        forward = torch.compile(model) if mode == "compiled" else model
        step = training_step(forward, images, masks)
        result[f"{mode}_first_step_s"] = seconds_per_step(step, 1, settings.device)
        seconds_per_step(step, settings.warmup, settings.device)
        result[f"{mode}_step_s"] = seconds_per_step(step, settings.compile_steps, settings.device)
    result["break_even_steps"] = break_even_steps(**result)
    return result


def break_even_steps(
    eager_first_step_s: float,
    eager_step_s: float,
    compiled_first_step_s: float,
    compiled_step_s: float,
) -> float:
    """Steps after which compiling has saved its compile time; inf when it never does."""
    saving_per_step = eager_step_s - compiled_step_s
    if saving_per_step <= 0:
        return math.inf
    return (compiled_first_step_s - eager_first_step_s) / saving_per_step


def render_markdown(
    settings: Settings, attention: list[dict[str, object]], compiled: dict | None
) -> str:
    """The report: machine, attention table, compile table."""
    lines = [
        f"Machine: {platform.processor() or platform.machine()}, {_cpu_model()}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} torch thread(s), "
        f"device {settings.device}.",
        f"Batch {settings.batch_size} x {settings.size}x{settings.size}, "
        f"{settings.warmup} warm-up steps, {settings.repeats} alternating repeats of "
        f"{settings.steps} steps; images/s are medians over the repeats.",
        "",
        "| backbone | timed | manual img/s | SDPA img/s | SDPA / manual |",
        "|---|---|---:|---:|---:|",
    ]
    for row in attention:
        for timed in ("encoder", "training_step"):
            rates = row[timed]
            lines.append(
                f"| {row['backbone']} | {timed.replace('_', ' ')} | {rates['manual']:.2f} | "
                f"{rates['sdpa']:.2f} | {rates['sdpa'] / rates['manual']:.3f} |"
            )
    if compiled is not None:
        lines += [
            "",
            f"torch.compile, training step of {settings.compile_backbone} + {HEAD} (SDPA), "
            f"steady state over {settings.compile_steps} steps:",
            "",
            "| | first step s (incl. compile) | steady step s |",
            "|---|---:|---:|",
            f"| eager | {compiled['eager_first_step_s']:.2f} | {compiled['eager_step_s']:.3f} |",
            f"| compiled | {compiled['compiled_first_step_s']:.2f} | "
            f"{compiled['compiled_step_s']:.3f} |",
            "",
            f"Break-even: {compiled['break_even_steps']:.0f} steps "
            f"(compile time / steady-state saving per step; inf = never).",
        ]
    return "\n".join(lines)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def build_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--size", type=int, default=128, help="image side, a multiple of 32")
    parser.add_argument("--backbones", default="mit_b0,mit_b2", help="comma-separated MiT sizes")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per repeat")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument(
        "--compile-backbone",
        default="first",
        help="backbone for the torch.compile timing: a name, 'first' (of --backbones) or 'none'",
    )
    parser.add_argument("--compile-steps", type=int, default=10, help="steady-state steps timed")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print its markdown report."""
    args = build_parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    backbones = tuple(name for name in args.backbones.split(",") if name)
    compile_backbone = {"first": backbones[0], "none": None}.get(
        args.compile_backbone, args.compile_backbone
    )
    settings = Settings(
        device=torch.device(args.device),
        size=args.size,
        backbones=backbones,
        steps=args.steps,
        warmup=args.warmup,
        repeats=args.repeats,
        batch_size=args.batch_size,
        compile_backbone=compile_backbone,
        compile_steps=args.compile_steps,
    )
    attention = [measure_attention(name, settings) for name in settings.backbones]
    compiled = measure_compile(compile_backbone, settings) if compile_backbone else None
    sys.stdout.write(render_markdown(settings, attention, compiled) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
