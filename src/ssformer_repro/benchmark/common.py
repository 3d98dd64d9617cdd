"""What every benchmark section shares: the settings, timing with device syncs, and spreads."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset, Subset

# Takes a number of batches, processes that many, returns how many images they held.
StepRunner = Callable[[int], int]


@dataclass(frozen=True)
class BenchmarkSettings:
    """Resolved settings of one benchmark run (see `python -m ssformer_repro.benchmark --help`)."""

    device: torch.device
    size: int
    backbones: tuple[str, ...]
    heads: tuple[str, ...]
    steps: int
    warmup: int
    repeats: int
    batch_size: int
    workers: tuple[int, ...]
    train_workers: int
    data_images: int
    epoch_images: int
    frame_size: tuple[int, int]
    seed: int
    threads: int | None  # torch CPU threads, also for the kedro processes; None: torch's default
    sections: tuple[str, ...]
    grid_backbones: tuple[str, ...]
    kedro_run: str
    kedro_epochs: int
    kedro_baseline_params: str | None  # the kedro command's baseline: extra --params
    project: Path

    @property
    def on_cuda(self) -> bool:
        return self.device.type == "cuda"

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly copy."""
        return {
            name: str(value) if isinstance(value, torch.device | Path) else value
            for name, value in self.__dict__.items()
        }


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so wall-clock timings cover it (no-op on CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def spread(values: Sequence[float]) -> dict[str, Any]:
    """Mean, standard deviation (0 for one value), min, max and the values themselves."""
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "min": min(values),
        "max": max(values),
        "values": list(values),
    }


def images_per_second(run: StepRunner, settings: BenchmarkSettings) -> dict[str, Any]:
    """Spread of images/s of `run(n_batches) -> n_images` over the repeats, after a warm-up call.

    The warm-up (`settings.warmup` batches) absorbs one-off costs: cuDNN autotuning, allocator
    growth, worker start-up; it is not timed.
    """
    _warm_up(run, settings)
    return spread([_rate(run, settings) for _ in range(settings.repeats)])


def interleaved_images_per_second(
    runs: Mapping[str, StepRunner], settings: BenchmarkSettings
) -> dict[str, dict[str, Any]]:
    """Like `images_per_second` for several runners, timed in turns: repeat 1 of each, then 2...

    Taking turns spreads any slowdown from other processes over all of them alike, which keeps
    their ratio fair on a shared machine. Only for in-memory batches: a DataLoader's workers
    would prefetch while the others run and flatter the next timing.
    """
    for run in runs.values():
        _warm_up(run, settings)
    rates: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(settings.repeats):
        for name, run in runs.items():
            rates[name].append(_rate(run, settings))
    return {name: spread(values) for name, values in rates.items()}


def _warm_up(run: StepRunner, settings: BenchmarkSettings) -> None:
    if settings.warmup > 0:
        run(settings.warmup)


def _rate(run: StepRunner, settings: BenchmarkSettings) -> float:
    """Images/s of one timed call of `run` over `settings.steps` batches."""
    synchronize(settings.device)
    started = time.perf_counter()
    n_images = run(settings.steps)
    synchronize(settings.device)
    return n_images / (time.perf_counter() - started)


def one_epoch(dataset: Dataset, epoch_images: int) -> Subset:
    """`dataset` repeated (or cut) to `epoch_images` samples: a training epoch of realistic length.

    A DataLoader restarts its pipeline at every epoch; with a few dozen frames and batches of 32
    that restart would dominate the timing, where a real epoch (800 Kvasir images) hides it.
    """
    return Subset(dataset, [index % len(dataset) for index in range(epoch_images)])


class BatchStream:
    """Endless batches from a DataLoader, handed out `n` at a time as a sized iterable.

    Measurements draw from one running iterator, so worker prefetching carries on from one
    measurement to the next; a new epoch starts (reshuffled) whenever the loader runs dry.
    """

    def __init__(self, loader: Iterable) -> None:
        self._batches = self._cycle(loader)

    @staticmethod
    def _cycle(loader: Iterable) -> Iterator:
        while True:
            yielded = False
            for batch in loader:
                yielded = True
                yield batch
            if not yielded:
                raise ValueError(
                    "The DataLoader yields no batches: its dataset holds fewer samples than "
                    "batch_size, and drop_last discards them."
                )

    def take(self, n_batches: int) -> _NextBatches:
        """The next `n_batches` batches (drawn while iterating)."""
        return _NextBatches(self._batches, n_batches)


@dataclass
class _NextBatches:
    """`n_batches` batches drawn lazily from an endless iterator; has a length, like a loader."""

    source: Iterator
    n_batches: int

    def __len__(self) -> int:
        return self.n_batches

    def __iter__(self) -> Iterator:
        for _ in range(self.n_batches):
            yield next(self.source)
