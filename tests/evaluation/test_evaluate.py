"""Scoring a run's checkpoint and drawing its test examples: what it runs on, and that each is
done once per result."""

from __future__ import annotations

from pathlib import Path

import cv2
import pandas as pd
import pytest
import torch

from ssformer_repro.evaluation import evaluate
from ssformer_repro.evaluation.settings import EvaluationSettings
from ssformer_repro.grid.runs import GridRun
from ssformer_repro.models import build_configured_model
from ssformer_repro.polyps.synthetic import generate_synthetic_polyps
from tests.tiny import run_config

RUN = GridRun("synth", "mit_b0", "sed", 1)
STRATA = {"small_below": 0.05, "large_from": 0.2}  # polyp-size thresholds
SETTINGS = {
    "model": {"pretrained": None, "head_options": {"sed": {"embed_dim": 16}}},
    "augmentation": {"image_size": 32},
    "evaluation": EvaluationSettings(batch_size=4, device="cpu").model_dump(),
}
CONFIG = run_config(RUN, SETTINGS)


@pytest.fixture
def scored_run(tmp_path: Path) -> tuple[pd.DataFrame, pd.DataFrame, Path, Path]:
    """A test split of four synthetic frames, a run's best.pt, its folder and its scores."""
    rows = []
    for image_id, image, mask in generate_synthetic_polyps(4, seed=0, min_size=40, max_size=48):
        image_path, mask_path = tmp_path / f"{image_id}.png", tmp_path / f"{image_id}_mask.png"
        cv2.imwrite(str(image_path), image[..., ::-1])
        cv2.imwrite(str(mask_path), mask)
        rows.append(dict(id=image_id, image_path=str(image_path), mask_path=str(mask_path)))
    manifest = pd.DataFrame(rows).assign(split="test", subset="")
    torch.manual_seed(0)
    network = build_configured_model(RUN.backbone, RUN.head, CONFIG.model, False)
    checkpoint = tmp_path / "best.pt"
    torch.save({"model": network.state_dict()}, checkpoint)
    run_folder = tmp_path / "run"
    run_folder.mkdir()
    scores, _ = evaluate.evaluate_checkpoint(CONFIG, manifest, checkpoint, STRATA, run_folder)
    return manifest, scores, checkpoint, run_folder


def test_test_examples_are_drawn_once_per_result(
    scored_run: tuple[pd.DataFrame, pd.DataFrame, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest, scores, checkpoint, run_folder = scored_run
    png = evaluate.plot_test_examples(CONFIG, manifest, scores, checkpoint, run_folder)
    assert png.startswith(b"\x89PNG")
    assert (run_folder / evaluate.EXAMPLES_FIGURE).read_bytes() == png

    def no_model(*args, **kwargs):
        raise AssertionError("the figure of an unchanged result is drawn again")

    monkeypatch.setattr(evaluate, "TrainedModel", no_model)
    again = evaluate.plot_test_examples(CONFIG, manifest, scores, checkpoint, run_folder)
    assert again == png

    # another result (here, another threshold) is drawn again, from the model
    changed = {**SETTINGS, "evaluation": {**SETTINGS["evaluation"], "threshold": 0.4}}
    with pytest.raises(AssertionError, match="drawn again"):
        evaluate.plot_test_examples(
            run_config(RUN, changed), manifest, scores, checkpoint, run_folder
        )


def test_scoring_runs_on_the_configured_cpu_threads_and_a_change_of_them_rescores_nothing(
    scored_run: tuple[pd.DataFrame, pd.DataFrame, Path, Path], tmp_path: Path, monkeypatch
) -> None:
    manifest, _, checkpoint, _ = scored_run
    threads_seen = []
    predictions = evaluate.TrainedModel.predictions

    def predictions_noting_threads(self, *args, **kwargs):
        threads_seen.append(torch.get_num_threads())
        return predictions(self, *args, **kwargs)

    monkeypatch.setattr(evaluate.TrainedModel, "predictions", predictions_noting_threads)
    before = torch.get_num_threads()
    more = {**SETTINGS, "evaluation": {**SETTINGS["evaluation"], "threads": before + 1}}

    scores, metrics = evaluate.evaluate_checkpoint(
        run_config(RUN, more), manifest, checkpoint, STRATA, tmp_path
    )
    assert threads_seen == [before + 1] and torch.get_num_threads() == before

    again = evaluate.evaluate_checkpoint(CONFIG, manifest, checkpoint, STRATA, tmp_path)
    assert threads_seen == [before + 1]  # kept from the first scoring
    pd.testing.assert_frame_equal(again[0], scores)
    assert again[1] == metrics
