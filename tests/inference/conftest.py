"""A trained-run stand-in: a freshly initialised MiT-B0 + SeD saved as a run's best.pt."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ssformer_repro.evaluation.evaluate import TrainedModel
from ssformer_repro.grid.runs import GridRun
from ssformer_repro.models import build_configured_model
from tests.tiny import run_config

RUN = GridRun("synth", "mit_b0", "sed", 1)
SETTINGS = {
    "model": {"pretrained": None, "head_options": {"sed": {}, "pld": {"fusion": "cat"}}},
    "augmentation": {"image_size": 32},
    "evaluation": {
        "threshold": 0.5,
        "amp": "off",
        "batch_size": 4,
        "num_workers": 0,
        "device": "cpu",
        "tta": "none",
    },
}


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    network = build_configured_model(RUN.backbone, RUN.head, run_config(RUN, SETTINGS).model, False)
    path = tmp_path_factory.mktemp("run") / "best.pt"
    torch.save({"model": network.state_dict(), "run_name": RUN.name, "epoch": 1}, path)
    return path


@pytest.fixture
def trained(checkpoint: Path) -> TrainedModel:
    return TrainedModel(run_config(RUN, SETTINGS), checkpoint)
