"""The machine description and the benchmark's results as JSON and Markdown."""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch

JSON_FILE = "benchmark.json"
MARKDOWN_FILE = "benchmark.md"
PRIMARY = ("ours", "end_to_end")
CPU_INFO = Path("/proc/cpuinfo")
MEMORY_INFO = Path("/proc/meminfo")


def describe_machine(device: torch.device) -> dict[str, Any]:
    """CPU model, cores, memory, software versions, the device and the load at the start."""
    cpu_model = _proc_field(CPU_INFO, "model name") or platform.processor() or "unknown"
    memory_kib = _proc_field(MEMORY_INFO, "MemTotal")
    on_cuda = device.type == "cuda"
    return {
        "cpu_model": cpu_model,
        "cpu_cores": os.cpu_count(),
        "memory_gib": round(int(memory_kib.split()[0]) / 2**20, 1) if memory_kib else None,
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda if on_cuda else None,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if on_cuda else f"CPU: {cpu_model}",
        "load_average_at_start": list(os.getloadavg()),
    }


def _proc_field(path: Path, name: str) -> str | None:
    """The value of the first `name : value` line of a /proc file, or None where there is none."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        key, _, value = line.partition(":")
        if key.strip() == name:
            return value.strip()
    return None


def write_results(results: dict[str, Any], output: Path) -> tuple[Path, Path]:
    """Write `benchmark.json` and `benchmark.md` into `output` (created if needed)."""
    output.mkdir(parents=True, exist_ok=True)
    json_path, markdown_path = output / JSON_FILE, output / MARKDOWN_FILE
    json_path.write_text(json.dumps(results, indent=2) + "\n")
    markdown_path.write_text(render_markdown(results))
    return json_path, markdown_path


def render_markdown(results: dict[str, Any]) -> str:
    """The results as Markdown: machine, command, then one table per section that ran."""
    machine = results["machine"]
    lines = [
        "# ssformer_repro benchmark",
        "",
        f"- Command: `{results['command']}`",
        f"- Started: {results['started']} (UTC), took {results['duration_seconds']:.0f} s",
        f"- Device: {machine['device']} ({machine['device_name']})",
        f"- CPU: {machine['cpu_model']}, {machine['cpu_cores']} cores, "
        f"{machine['memory_gib']} GiB, torch threads {machine['torch_threads']}",
        f"- Software: Python {machine['python']}, torch {machine['torch']}, "
        f"CUDA {machine['cuda']}, {machine['platform']}",
        f"- Load average (1, 5, 15 min) at start {_loads(machine['load_average_at_start'])}, "
        f"at end {_loads(machine['load_average_at_end'])}",
        "",
    ]
    for title, render in SECTION_RENDERERS:
        text = render(results)
        if text:
            lines += [f"## {title}", "", text, ""]
    return "\n".join(lines)


def _train_markdown(results: dict[str, Any]) -> str | None:
    train = results["train"]
    if train is None:
        return None
    table = _table(
        train["rows"],
        {
            "backbone": "backbone",
            "head": "head",
            "loop": "loop",
            "mode": "mode",
            "precision": "precision",
            "memory_format": "memory format",
            "optimizer": "optimizer",
            "data": "data",
            "size": "size",
            "batch_size": "batch",
            "images_per_second": "images/s",
            "tflops": "TFLOP/s",
        },
    )
    ratios = _table(
        train["speedups"],
        {"backbone": "backbone", "head": "head", "mode": "mode", "speedup": "ours / reference"},
    )
    return (
        f"Mean ± standard deviation over {results['settings']['repeats']} repeats of "
        f"{results['settings']['steps']} steps, after {results['settings']['warmup']} "
        "warm-up steps. TFLOP/s = images/s x forward FLOPs x 3 (FLOPs of matrix products, "
        "convolutions and attention only, torch's FlopCounterMode).\n\n"
        f"{table}\n\nSpeed-up of our loop over the official-style loop:\n\n{ratios}"
    )


def _data_markdown(results: dict[str, Any]) -> str | None:
    data = results["data"]
    if data is None:
        return None
    workspace = results["workspace"]
    rows = [dict(row) for row in data["rows"]]
    keep_up = data["keep_up"]
    note = "No training step was measured in this run, so keeping up is not judged."
    if keep_up is not None:
        for row, verdict in zip(rows, keep_up["data_paths"], strict=True):
            row["supply_over_demand"] = verdict["supply_over_demand"]
            row["keeps_up"] = "yes" if verdict["keeps_up"] else "no"
        note = (
            f"Demand: our training step of {keep_up['training_step']} at "
            f"{_number(keep_up['training_images_per_second'])} images/s (compute mode). "
            "Measured alone: in training, loader workers share the CPU with the main process."
        )
    table = _table(
        rows,
        {
            "data_path": "data path",
            "workers": "workers",
            "images_per_second": "images/s",
            "supply_over_demand": "supply / demand",
            "keeps_up": "keeps up",
        },
    )
    return (
        f"{workspace['images']} synthetic frames of {workspace['frame_size'][0]}-"
        f"{workspace['frame_size'][1]} px ({workspace['layout']}), batches of "
        f"{results['settings']['batch_size']} at {results['settings']['size']} px.\n\n"
        f"{table}\n\n{note}"
    )


def _eval_markdown(results: dict[str, Any]) -> str | None:
    evaluation = results["eval"]
    if evaluation is None:
        return None
    return _table(
        evaluation["rows"],
        {
            "backbone": "backbone",
            "head": "head",
            "precision": "precision",
            "size": "size",
            "images": "images",
            "predict_images_per_second": "predict images/s",
            "score_images_per_second": "scoring images/s",
        },
    )


def _kedro_markdown(results: dict[str, Any]) -> str | None:
    kedro = results["kedro"]
    if kedro is None:
        return None
    lines = _kedro_split(kedro)
    if kedro["data_processing_seconds"] is not None:
        lines.append(
            f"- Processing the demo data first (not counted): "
            f"{kedro['data_processing_seconds']:.1f} s"
        )
    plain = kedro["plain"]
    lines += [
        f"- The same nodes run by a plain loop without Kedro (`{plain['command']}`, timed "
        f"first): {plain['wall_seconds']:.1f} s, of which training loops "
        f"{plain['training_loop_seconds']:.1f} s; `kedro run` adds "
        f"{plain['kedro_adds_seconds']:.1f} s ({plain['kedro_adds_percent']:.1f} % of its wall "
        f"time), and outside the training loops "
        f"{plain['kedro_adds_outside_loops_seconds']:.1f} s "
        f"({plain['kedro_adds_outside_loops_percent']:.1f} %)",
    ]
    baseline = kedro["baseline"]
    if baseline is not None:
        lines += [
            "",
            f"Baseline, timed first in the same copy: the same command with `{baseline['params']}`",
            "",
            *_kedro_split(baseline),
        ]
    return "\n".join(lines)


def _kedro_split(kedro: dict[str, Any]) -> list[str]:
    """How one timed kedro command's wall time splits."""
    wall = kedro["wall_seconds"]

    def share(seconds: float) -> str:
        return f"{seconds:.1f} s ({100 * seconds / wall:.1f} %)"

    return [
        f"- Command: `{kedro['command']}` ({kedro['runs']} run(s), {kedro['epochs']} epochs)",
        f"- Wall time: {wall:.1f} s",
        f"- Inside the training loops (sum of epoch_seconds): "
        f"{share(kedro['training_loop_seconds'])}",
        f"- Rest of the nodes (model build, checkpoints, MLflow child runs, evaluation, data "
        f"processing, reporting): {share(kedro['other_node_seconds'])}",
        f"- Loading and saving catalog datasets: {share(kedro['dataset_seconds'])}",
        f"- Outside nodes and dataset I/O (start-up incl. imports, configuration, hooks; the "
        f"runner): {share(kedro['outside_nodes_seconds'])}: before the first node and after the "
        f"last {kedro['startup_and_exit_seconds']:.1f} s, between nodes "
        f"{kedro['between_nodes_seconds']:.1f} s",
    ]


def _estimate_markdown(results: dict[str, Any]) -> str | None:
    estimate = results["estimate"]
    if estimate is None or not estimate["estimates"]:
        return None
    grid = estimate["grid"]
    datasets = ", ".join(
        f"{dataset['name']} {dataset['train_images']} + {dataset['val_images']}"
        for dataset in grid["datasets"]
    )
    totals = _table(
        estimate["estimates"],
        {
            "loop": "loop",
            "mode": "mode",
            "measured_models": "measured",
            "measured_at_size": "measured at size",
            "total_pflop": "grid PFLOP",
            "total_hours": "hours",
        },
    )
    # Per model for the most realistic estimate: our loop fed by its own data path.
    first = next(
        (item for item in estimate["estimates"] if (item["loop"], item["mode"]) == PRIMARY),
        estimate["estimates"][0],
    )
    models = _table(
        first["models"],
        {
            "backbone": "backbone",
            "head": "head",
            "forward_gflops": f"forward GFLOPs at {grid['size']}",
            "rate_tflops": "TFLOP/s used",
            "rate_from": "rate from",
            "hours": "hours",
        },
    )
    return (
        f"Grid: {', '.join(grid['backbones'])} x {', '.join(grid['heads'])} x ({datasets} "
        f"images), {grid['epochs']} epochs at {grid['size']} px. Estimated from the measured "
        "achieved TFLOP/s, scaled by each grid model's FLOPs (a training step = 3 forward "
        "passes per training image, plus one forward pass per validation image every epoch). "
        "Backbones that were not measured are scaled from the measured ones by FLOPs, and a "
        "rate measured below the grid's image size is carried over to it: both assumptions "
        "make the figure a rough one.\n\n"
        f"{totals}\n\nPer model, {first['loop']} loop, {first['mode']} mode:\n\n{models}"
    )


SECTION_RENDERERS: tuple[tuple[str, Callable[[dict[str, Any]], str | None]], ...] = (
    ("Training throughput", _train_markdown),
    ("Data path", _data_markdown),
    ("Evaluation throughput", _eval_markdown),
    ("Kedro's share of a demo run", _kedro_markdown),
    ("Estimated wall time of the full grid", _estimate_markdown),
)


def _table(rows: Sequence[dict[str, Any]], columns: dict[str, str]) -> str:
    """A Markdown table of `columns` (key -> heading); spreads print as mean ± std."""
    frame = pd.DataFrame(
        [{heading: _cell(row.get(key)) for key, heading in columns.items()} for row in rows],
        columns=list(columns.values()),
    )
    return frame.to_markdown(index=False, disable_numparse=True)


def _cell(value: Any) -> str:
    if isinstance(value, dict) and "mean" in value:
        return f"{_number(value['mean'])} ± {_number(value['std'])}"
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    return "" if value is None else str(value)


def _number(value: float) -> str:
    """Three significant digits without exponents, e.g. 1234, 12.3, 0.123, 0.00123."""
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _loads(loads: Sequence[float]) -> str:
    return ", ".join(f"{load:.2f}" for load in loads)
