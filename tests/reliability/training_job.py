"""A real, small training run for the interruption tests: `python training_job.py RUN_DIR EPOCHS`.

It trains the tests' tiny conv net (tests/tiny.py) with `train_segmenter` on in-memory disks, on the CPU, and prints
`EPOCH <n>` once epoch n is checkpointed. Each training sample sleeps a little, so an epoch
lasts about half a second and a test can kill the process in the middle of one.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the project root, for `tests`

from ssformer_repro.training.loop import train_segmenter  # noqa: E402
from tests.tiny import DiskDataset, tiny_config, tiny_model  # noqa: E402

SECONDS_PER_SAMPLE = 0.06


def report(line: str) -> None:
    """Tell the test (reading stdout) how far training got."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main(run_dir: str, epochs: int) -> None:
    logging.basicConfig(level=logging.INFO)  # to stderr: "resuming from ..." and epoch lines
    torch.set_num_threads(1)  # identical arithmetic in every process
    train_segmenter(
        tiny_model(),
        DiskDataset(count=8, augment=True, seconds_per_sample=SECONDS_PER_SAMPLE),
        DiskDataset(count=8),
        tiny_config(epochs=epochs),
        run_dir,
        "killed-run",
        on_epoch_end=lambda row: report(f"EPOCH {row['epoch']}"),
    )
    report("DONE")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
