"""Command line: `python -m ssformer_repro.benchmark --help`."""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from ssformer_repro.benchmark.common import BenchmarkSettings
from ssformer_repro.benchmark.estimate import BASE_GRID
from ssformer_repro.benchmark.kedro_overhead import WHOLE_DEMO
from ssformer_repro.benchmark.report import write_results
from ssformer_repro.benchmark.runner import SECTIONS, run_benchmark
from ssformer_repro.models import available_backbones, available_heads
from ssformer_repro.training.device import resolve_device

# Settings whose best value depends on the device: the official batch of 32 and 4 loader
# workers on a GPU; on a CPU a small batch, and no workers to compete with the model for cores.
DEVICE_DEFAULTS = {
    "cuda": {"batch_size": 32, "train_workers": 4},
    "cpu": {"batch_size": 8, "train_workers": 0},
}


def _comma_list(cast: Callable[[str], object]) -> Callable[[str], tuple]:
    """An argparse type for comma-separated values, e.g. "0,2,4" -> (0, 2, 4)."""

    def parse(text: str) -> tuple:
        items = [item.strip() for item in text.split(",") if item.strip()]
        if not items:
            raise argparse.ArgumentTypeError("expected at least one comma-separated value")
        return tuple(cast(item) for item in items)

    return parse


def build_parser() -> argparse.ArgumentParser:
    """The benchmark's command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m ssformer_repro.benchmark",
        description="Measure training, data-path, evaluation and Kedro throughput side by side, "
        "against a loop written like the official SSFormer code; write JSON and Markdown.",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--size", type=int, default=352, help="image size (multiple of 32)")
    parser.add_argument("--backbones", type=_comma_list(str), default=("mit_b0",))
    parser.add_argument("--heads", type=_comma_list(str), default=("pld", "pld_linear", "sed"))
    parser.add_argument("--steps", type=int, default=10, help="timed steps per repeat")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps before timing")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, help="default: 32 on CUDA, 8 on CPU")
    parser.add_argument(
        "--workers",
        type=_comma_list(int),
        default=(0, 2, 4),
        help="DataLoader worker counts of the data section",
    )
    parser.add_argument(
        "--train-workers",
        type=int,
        help="loader workers of the end-to-end training and evaluation: default 4 on CUDA, 0 on CPU",
    )
    parser.add_argument("--data-images", type=int, default=64, help="synthetic frames to generate")
    parser.add_argument(
        "--epoch-images",
        type=int,
        default=800,
        help="samples per training epoch, the frames repeated (Kvasir's 800 by default)",
    )
    parser.add_argument(
        "--frame-size",
        type=_comma_list(int),
        default=(500, 600),
        help="min,max side of the synthetic frames in px (Kvasir-SEG-like by default)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads",
        type=int,
        help="torch CPU threads, here and in the kedro runs (default: torch's, one per core)",
    )
    parser.add_argument(
        "--sections", type=_comma_list(str), default=tuple(SECTIONS), help=", ".join(SECTIONS)
    )
    parser.add_argument(
        "--grid-backbones",
        type=_comma_list(str),
        default=BASE_GRID.backbones,
        help="backbones of the full-grid estimate (the study's six by default)",
    )
    parser.add_argument(
        "--kedro-run",
        default=WHOLE_DEMO,
        help=f"one demo run (e.g. synth_kvasir.mit_b0.sed) or {WHOLE_DEMO!r}: the whole demo job",
    )
    parser.add_argument("--kedro-epochs", type=int, default=15, help="epochs of each Kedro run")
    parser.add_argument(
        "--kedro-baseline-params",
        default=None,
        help="also time the Kedro command with these extra --params first, as a baseline "
        "(e.g. training.checkpoint_every_seconds=0)",
    )
    parser.add_argument(
        "--project", type=Path, default=Path.cwd(), help="Kedro project root (kedro section)"
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=Path("data/08_reporting/benchmark"),
        help="folder for benchmark.json and benchmark.md",
    )
    return parser


def settings_from_args(
    args: argparse.Namespace, parser: argparse.ArgumentParser
) -> BenchmarkSettings:
    """Check the options (exiting with a usage error) and fill in the device defaults."""
    checks = [
        (
            args.size > 0 and args.size % 32 == 0,
            f"--size must be a multiple of 32, got {args.size}",
        ),
        (args.steps > 0 and args.repeats > 0, "--steps and --repeats must be positive"),
        (args.warmup >= 0, "--warmup must be >= 0"),
        (args.threads is None or args.threads > 0, "--threads must be positive"),
        (min(args.workers) >= 0, "--workers must be >= 0"),
        (
            len(args.frame_size) == 2 and 32 <= args.frame_size[0] <= args.frame_size[1],
            f"--frame-size must be min,max with 32 <= min <= max, got {args.frame_size}",
        ),
        (
            set(args.sections) <= set(SECTIONS),
            f"--sections must be among {', '.join(SECTIONS)}, got {','.join(args.sections)}",
        ),
        (
            set(args.backbones + args.grid_backbones) <= set(available_backbones()),
            f"--backbones/--grid-backbones must be among {', '.join(available_backbones())}",
        ),
        (
            set(args.heads) <= set(available_heads()),
            f"--heads must be among {', '.join(available_heads())}",
        ),
    ]
    for passed, message in checks:
        if not passed:
            parser.error(message)
    try:
        device = resolve_device(args.device)
    except (ValueError, RuntimeError) as error:
        parser.error(str(error))
    defaults = DEVICE_DEFAULTS[device.type]
    batch_size = args.batch_size or defaults["batch_size"]
    if batch_size > min(args.data_images, args.epoch_images):
        parser.error(
            f"--data-images ({args.data_images}) and --epoch-images ({args.epoch_images}) must "
            f"be at least the batch size ({batch_size})."
        )
    return BenchmarkSettings(
        device=device,
        size=args.size,
        backbones=args.backbones,
        heads=args.heads,
        steps=args.steps,
        warmup=args.warmup,
        repeats=args.repeats,
        batch_size=batch_size,
        workers=args.workers,
        train_workers=(
            defaults["train_workers"] if args.train_workers is None else args.train_workers
        ),
        data_images=args.data_images,
        epoch_images=args.epoch_images,
        frame_size=args.frame_size,
        seed=args.seed,
        threads=args.threads,
        sections=args.sections,
        grid_backbones=args.grid_backbones,
        kedro_run=args.kedro_run,
        kedro_epochs=args.kedro_epochs,
        kedro_baseline_params=args.kedro_baseline_params,
        project=args.project.resolve(),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, write JSON + Markdown to --output and print the Markdown."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    settings = settings_from_args(args, parser)
    if settings.threads is not None:
        torch.set_num_threads(settings.threads)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    command = shlex.join(["python", "-m", "ssformer_repro.benchmark", *argv])
    results = run_benchmark(settings, command)
    json_path, markdown_path = write_results(results, args.output)
    sys.stdout.write(markdown_path.read_text())
    sys.stdout.write(f"\nWrote {json_path} and {markdown_path}.\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
