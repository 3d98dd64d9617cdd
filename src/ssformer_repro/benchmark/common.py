"""What the sections share: the `Run` (settings, synthetic frames, results so far), timing
between device syncs, batch streams, the retry on CUDA out-of-memory, the machine's description
and Markdown tables. Sections time `StepRunner`s: functions that process `n` batches and return
how many images they held."""

from __future__ import annotations

import dataclasses
import gc
import itertools
import logging
import os
import platform
import re
import statistics
import time
from collections.abc import Callable, Iterator, Mapping, Sequence, Sized
from functools import cached_property, partial
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from ssformer_repro.benchmark.settings import BenchmarkSettings
from ssformer_repro.polyps.cache import DecodedCache, build_decoded_cache
from ssformer_repro.polyps.layouts import discover_pairs
from ssformer_repro.polyps.splits import build_split_manifest
from ssformer_repro.polyps.synthetic import generate_synthetic_polyps, write_synthetic_dataset
from ssformer_repro.storage.catalog import DecodedCacheDataset

logger = logging.getLogger(__name__)

StepRunner = Callable[[int], int]  # processes n batches, returns the number of images
T = TypeVar("T")
HEADINGS = {"batch_size": "batch", "images_per_second": "images/s"}  # of table columns
LAYOUT = "kvasir"  # JPEG frames and JPEG masks, the costlier of the study's two datasets to decode


@dataclasses.dataclass
class Run:
    """One benchmark run: its settings, scratch folder and the results gathered so far."""

    settings: BenchmarkSettings
    scratch: Path
    results: dict[str, Any]

    @cached_property
    def manifest(self) -> pd.DataFrame:
        """The synthetic Kvasir-like frames (JPEG files, split "train"), written on first use."""
        settings, root = self.settings, self.scratch / "frames"
        low, high = settings.frame_size
        logger.info("Writing %d synthetic %d-%d px frames.", settings.data_images, low, high)
        samples = generate_synthetic_polyps(settings.data_images, settings.seed, low, high)
        write_synthetic_dataset(samples, root, layout=LAYOUT)
        pairs = discover_pairs(LAYOUT, root)
        layout = "Kvasir-SEG (JPEG frames and masks), synthetic"
        self.results["workspace"] = dict(images=len(pairs), layout=layout, frame_size=[low, high])
        return build_split_manifest(pairs, {pair.id: "train" for pair in pairs})

    def decoded_cache(self) -> DecodedCache:
        """The frames decoded at the run's size into the pipeline's cache, memory-mapped."""
        dataset = DecodedCacheDataset(str(self.scratch / "decoded"))
        if not dataset.exists():
            logger.info("Decoding the frames at %d px into the cache.", self.settings.size)
            dataset.save(build_decoded_cache(self.manifest, self.settings.size, splits=("train",)))
        return dataset.load()

    def per_model(self, measure: Callable[..., list[dict]]) -> list[dict]:
        """The rows of `measure(backbone, head, run, settings)` for every model to time, each
        retried at half the batch while CUDA runs out of memory."""
        settings = self.settings
        models = [partial(measure, b, h, self) for b in settings.backbones for h in settings.heads]
        return [row for one in models for row in halving_batch(one, settings)]


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so wall-clock timings cover it (no-op on CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(call: Callable[[], T], device: torch.device) -> tuple[T, float]:
    """`call()`'s result and the seconds it took, between device syncs."""
    synchronize(device)
    started = time.perf_counter()
    result = call()
    synchronize(device)
    return result, time.perf_counter() - started


def spread(values: Sequence[float]) -> dict[str, Any]:
    """Mean, standard deviation (0 for one value), min, max and the values themselves."""
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    summary = {"mean": statistics.fmean(values), "std": std, "min": min(values), "max": max(values)}
    return {**summary, "values": list(values)}


def images_per_second(
    runs: Mapping[str, StepRunner], settings: BenchmarkSettings
) -> dict[str, dict[str, Any]]:
    """Each runner's images/s over `settings.repeats` timings of `settings.steps` batches, after
    `settings.warmup` untimed ones; runners take turns, so that other processes slow them alike."""
    for run in runs.values():
        if settings.warmup:
            run(settings.warmup)
    rates: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(settings.repeats):
        for name, run in runs.items():
            images, seconds = timed(partial(run, settings.steps), settings.device)
            rates[name].append(images / seconds)
    return {name: spread(values) for name, values in rates.items()}


def repeated(forward: Callable[[], Any], batch_size: int) -> StepRunner:
    """A StepRunner calling `forward()` once per batch of `batch_size` images."""

    def steps(n_batches: int) -> int:
        for _ in range(n_batches):
            forward()
        return n_batches * batch_size

    return steps


def precisions(settings: BenchmarkSettings) -> dict[str, torch.dtype | None]:
    """The autocast dtype of each precision to time: fp32, and bf16 autocast on CUDA."""
    return {"fp32": None} | ({"bf16 autocast": torch.bfloat16} if settings.on_cuda else {})


def halving_batch(measure: Callable[[BenchmarkSettings], T], settings: BenchmarkSettings) -> T:
    """`measure(settings)`, retried at half the batch while CUDA runs out of memory (down to
    1); `measure` records in its rows the batch size it ran with."""
    while True:
        try:
            return measure(settings)
        except torch.OutOfMemoryError:
            if settings.batch_size == 1:
                raise
            logger.warning("Out of memory at batch %d: retrying at half.", settings.batch_size)
        settings = dataclasses.replace(settings, batch_size=settings.batch_size // 2)
        gc.collect()  # outside the except block, where no traceback holds the failed tensors
        torch.cuda.empty_cache()  # a no-op where CUDA was not used


def batch_stream(
    dataset: Dataset, settings: BenchmarkSettings, workers: int, pin: bool = False
) -> Callable[[int], Sized]:
    """`take(n)`: the next n full batches of one endless shuffled DataLoader over `dataset` in
    epochs of `settings.epoch_images` samples (its restarts weigh as in training), drawn while
    iterating: worker prefetching carries on from one timing to the next."""
    epoch = Subset(dataset, [index % len(dataset) for index in range(settings.epoch_images)])
    seeded = dict(shuffle=True, generator=torch.Generator().manual_seed(settings.seed))
    options = dict(num_workers=workers, persistent_workers=workers > 0, pin_memory=pin)
    loader = DataLoader(epoch, settings.batch_size, drop_last=True, **seeded, **options)
    batches = itertools.chain.from_iterable(itertools.repeat(loader))
    return lambda n_batches: _Sized(itertools.islice(batches, n_batches), n_batches)


@dataclasses.dataclass
class _Sized:
    items: Iterator
    length: int

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator:
        return self.items


def describe_machine(device: torch.device) -> dict[str, Any]:
    """CPU model, cores, memory, software versions, the device and the load at the start."""
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    found = re.search(r"^model name\s*: (.*)$", cpuinfo, re.M)
    cpu = found.group(1) if found else platform.processor() or "unknown"
    on_cuda = device.type == "cuda"
    return {
        "cpu_model": cpu,
        "cpu_cores": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda if on_cuda else None,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if on_cuda else f"CPU: {cpu}",
        "load_average_at_start": list(os.getloadavg()),
    }


def table(rows: Sequence[Mapping[str, Any]], columns: str) -> str:
    """A Markdown table of `columns`, comma-separated "key" or "key:heading" (default: `HEADINGS`
    or the key in words); spreads print as mean ± std, floats with three significant digits."""
    items = [item.strip().partition(":") for item in columns.split(",")]
    headings = [heading or HEADINGS.get(key, key.replace("_", " ")) for key, _, heading in items]
    cells = [[_cell(row.get(key)) for key, _, _ in items] for row in rows]
    return pd.DataFrame(cells, columns=headings).to_markdown(index=False, disable_numparse=True)


def _cell(value: Any) -> str:
    if isinstance(value, dict) and "mean" in value:
        return f"{number(value['mean'])} ± {number(value['std'])}"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return number(value)
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    return "" if value is None else str(value)


def number(value: float) -> str:
    """Three significant digits without exponents, e.g. 1234, 12.3, 0.123, 0.00123."""
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"
