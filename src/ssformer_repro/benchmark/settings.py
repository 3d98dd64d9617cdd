"""The benchmark's settings: a dataclass whose fields are the command-line options (their
metadata the argparse keywords). A None default is the device's (`DEVICE_DEFAULTS`); bad values
raise a ValueError, which the command line reports as a usage error."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch

from ssformer_repro.models import available_backbones, available_heads
from ssformer_repro.training.device import resolve_device

# GPU: the official batch, the study's 4 loader workers, more steps as GPU steps are short. CPU:
# a small batch, no workers to compete with the model for cores, few steps (under 2 min on 2).
DEVICE_DEFAULTS: dict[str, dict[str, Any]] = {
    "cuda": {"batch_size": 32, "steps": 20, "warmup": 5, "workers": (0, 4, 8), "train_workers": 4},
    "cpu": {"batch_size": 8, "steps": 5, "warmup": 2, "workers": (0, 2), "train_workers": 0},
}
# In running order; each is an entry of `runner.SECTIONS`, which imports this module.
SECTION_NAMES = ("train", "data", "eval", "attention", "predict")


def comma_list(cast: type) -> Any:
    """An argparse type for comma-separated values, e.g. "0,2,4" -> (0, 2, 4)."""
    return lambda text: tuple(cast(item.strip()) for item in text.split(",") if item.strip())


def option(default: Any, help: str, type: Any = None, **keywords: Any) -> Any:
    """A field that is also the option `--<field-name>`."""
    return field(default=default, metadata={"help": help, "type": type, **keywords})


NAMES, INTS = comma_list(str), comma_list(int)


@dataclass(frozen=True)
class BenchmarkSettings:
    """One benchmark run (`python -m ssformer_repro.benchmark --help` describes each field)."""

    device: torch.device | str = option("auto", "auto, cpu, cuda or cuda:N", str)
    sections: tuple[str, ...] | None = option(None, "sections to run, comma-separated", NAMES)
    size: int = option(352, "image size, a multiple of 32", int)
    backbones: tuple[str, ...] = option(("mit_b0",), "backbones to time", NAMES)
    heads: tuple[str, ...] = option(("pld", "pld_linear", "sed"), "heads to time", NAMES)
    steps: int | None = option(None, "timed batches per repeat", int)
    warmup: int | None = option(None, "untimed batches first", int)
    repeats: int = option(3, "timings per figure (mean ± std)", int)
    batch_size: int | None = option(None, "batch, halved while CUDA runs out of memory", int)
    workers: tuple[int, ...] | None = option(None, "loader worker counts of section data", INTS)
    train_workers: int | None = option(None, "loader workers of end-to-end training, eval", int)
    data_images: int = option(32, "synthetic frames to generate", int)
    epoch_images: int = option(800, "samples per epoch, frames repeated (Kvasir's 800)", int)
    frame_size: tuple[int, ...] = option((500, 600), "min,max side of the frames, px", INTS)
    seed: int = option(0, "random seed", int)
    threads: int | None = option(None, "torch CPU threads (default: torch's)", int)
    estimate: bool = option(True, "estimate the grid's time", action=argparse.BooleanOptionalAction)
    project: Path = option(Path("."), "Kedro project of the estimated grid", Path)
    env: str | None = option(None, "its Kedro environment (default: Kedro's)")
    compile_steps: int = option(10, "section attention: torch.compile steps, 0: none", int)

    def __post_init__(self) -> None:
        try:
            device = resolve_device(str(self.device))
        except (ValueError, RuntimeError) as error:
            raise ValueError(str(error)) from error
        resolved = {"device": device, "project": Path(self.project).resolve()}
        defaults = DEVICE_DEFAULTS[device.type].items()
        resolved |= {name: value for name, value in defaults if getattr(self, name) is None}
        for name, value in resolved.items():
            object.__setattr__(self, name, value)
        names = dict(
            sections=SECTION_NAMES, backbones=available_backbones(), heads=available_heads()
        )
        for option, known in names.items():
            if not set(getattr(self, option) or ()) <= set(known):
                raise ValueError(f"--{option} must be among {', '.join(known)}")
        frame_ok = len(self.frame_size) == 2 and 32 <= self.frame_size[0] <= self.frame_size[-1]
        enough_images = self.batch_size <= min(self.data_images, self.epoch_images)
        checks = [
            (self.size > 0 and self.size % 32 == 0, "--size must be a positive multiple of 32"),
            (min(self.steps, self.repeats) > 0, "--steps and --repeats must be > 0"),
            (self.batch_size > 0, "--batch-size must be > 0"),
            (min(self.warmup, self.compile_steps) >= 0, "--warmup, --compile-steps must be >= 0"),
            (min(*self.workers, self.train_workers) >= 0, "worker counts must be >= 0"),
            (self.threads is None or self.threads > 0, "--threads must be > 0"),
            (frame_ok, "--frame-size must be min,max with 32 <= min <= max"),
            (enough_images, "--batch-size must be at most --data-images and --epoch-images"),
        ]
        for passed, message in checks:
            if not passed:
                raise ValueError(message)

    @property
    def on_cuda(self) -> bool:
        return self.device.type == "cuda"

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly copy."""
        values = {item.name: getattr(self, item.name) for item in fields(self)}
        return {k: str(v) if isinstance(v, torch.device | Path) else v for k, v in values.items()}
