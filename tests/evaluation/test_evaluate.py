"""Scoring a run's checkpoint on its test split: what it runs on, what it keeps."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch

from ssformer_repro.evaluation import evaluate
from ssformer_repro.grid.runs import GridRun
from ssformer_repro.models import build_configured_model
from tests.polyps.conftest import write_pair

RUN = GridRun("synth", "mit_b0", "sed", 1)
STRATA = {"small_below": 0.05, "large_from": 0.2}
EVALUATION = {"threshold": 0.5, "batch_size": 2, "num_workers": 0, "device": "cpu"}
SETTINGS = {
    "model": {"pretrained": None, "head_options": {"sed": {}}},
    "augmentation": {"image_size": 32},
    "evaluation": EVALUATION,
}


def test_scoring_runs_on_the_configured_cpu_threads_and_a_change_of_them_rescores_nothing(
    tmp_path: Path, monkeypatch
) -> None:
    network = build_configured_model(RUN.backbone, RUN.head, SETTINGS["model"], False)
    checkpoint = tmp_path / "best.pt"
    torch.save({"model": network.state_dict(), "run_name": RUN.name, "epoch": 1}, checkpoint)
    pairs = [write_pair(tmp_path, "images", "masks", f"{i}.png", seed=i) for i in range(3)]
    manifest = pd.DataFrame(
        [(str(i), str(image), str(mask), "test") for i, (image, mask) in enumerate(pairs)],
        columns=["id", "image_path", "mask_path", "split"],
    )
    threads_seen = []
    predictions = evaluate.TrainedModel.predictions

    def predictions_noting_threads(self, *args, **kwargs):
        threads_seen.append(torch.get_num_threads())
        return predictions(self, *args, **kwargs)

    monkeypatch.setattr(evaluate.TrainedModel, "predictions", predictions_noting_threads)
    before = torch.get_num_threads()
    more = {**SETTINGS, "evaluation": {**EVALUATION, "threads": before + 1}}

    scores, metrics = evaluate.evaluate_checkpoint(RUN, more, manifest, checkpoint, STRATA, tmp_path)
    assert threads_seen == [before + 1] and torch.get_num_threads() == before

    again = evaluate.evaluate_checkpoint(RUN, SETTINGS, manifest, checkpoint, STRATA, tmp_path)
    assert threads_seen == [before + 1]  # kept from the first scoring
    pd.testing.assert_frame_equal(again[0], scores)
    assert again[1] == metrics
