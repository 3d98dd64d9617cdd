"""Using a trained demo run through `kedro run`: predict on a folder of frames, export it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from ssformer_repro.config.loader import load_parameters
from ssformer_repro.evaluation.evaluate import TrainedModel
from ssformer_repro.evaluation.metrics import binarise
from ssformer_repro.grid.run_config import resolve_run
from ssformer_repro.grid.runs import GridRun
from ssformer_repro.inference.export import ProbabilityModel
from tests.conftest import kedro

pytestmark = pytest.mark.slow  # Kedro runs end to end

RUN = GridRun("synth_kvasir", "mit_b0", "pld", 42)
PREDICTIONS = "data/demo/09_inference/predictions"


def trained(project: Path, run: GridRun) -> TrainedModel:
    parameters = load_parameters(project, "demo")
    return TrainedModel(
        resolve_run(run, parameters), project / "data/demo/06_models" / run.folder / "best.pt"
    )


@pytest.fixture(scope="module")
def frames(reproduced: Path) -> Path:
    """The demo's synthetic Kvasir test images, as a folder of frames without masks."""
    manifest = pd.read_csv(reproduced / "data/demo/05_model_input/synth_kvasir_split.csv")
    folder = reproduced / "frames"
    folder.mkdir()
    for path in manifest.loc[manifest["split"] == "test", "image_path"]:
        shutil.copy2(reproduced / path, folder)
    return folder


def predict(project: Path, *params: str, check: bool = True) -> subprocess.CompletedProcess:
    return kedro(
        project,
        "run",
        "--env=demo",
        "--pipelines=predict",
        f"--params={','.join(params)}",
        check=check,
    )


def test_predicted_masks_are_the_evaluations_thresholded_predictions(
    reproduced: Path, frames: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    predict(reproduced, f"predict.run={RUN.name}", f"predict.input={frames}")
    output = reproduced / PREDICTIONS / RUN.name / "frames"
    table = pd.read_csv(output / "predictions.csv")
    assert (table["status"] == "ok").all() and len(table) == len(list(frames.iterdir()))

    monkeypatch.chdir(reproduced)  # the manifest's paths are relative to the project
    model = trained(reproduced, RUN)
    manifest = pd.read_csv("data/demo/05_model_input/synth_kvasir_split.csv", dtype={"id": str})
    threshold = model.evaluation.threshold
    compared = 0
    for image_id, probability, _ in model.predictions(model.test_set(manifest)):
        expected = binarise(torch.from_numpy(probability), threshold).numpy()
        written = np.array(Image.open(output / "masks" / f"{image_id}.png")) == 255
        assert np.array_equal(written, expected), image_id
        compared += 1
    assert compared == len(table)


def test_a_second_prediction_never_writes_over_the_first(reproduced: Path, frames: Path) -> None:
    args = (f"predict.run={RUN.name}", f"predict.input={frames}")
    first = reproduced / PREDICTIONS / RUN.name / "frames"
    if not first.exists():
        predict(reproduced, *args)
    before = (first / "predictions.csv").read_bytes()
    refused = predict(reproduced, *args, check=False)
    assert refused.returncode != 0
    assert "holds an earlier result, which is never written over" in refused.stdout + refused.stderr
    assert "Traceback" not in refused.stdout + refused.stderr  # one line (cli.py)
    assert (first / "predictions.csv").read_bytes() == before
    predict(reproduced, *args, "predict.on_existing=new", "predict.tta=flips")
    assert (first.parent / "frames-2" / "predictions.csv").is_file()


def test_bad_requests_fail_before_any_work(reproduced: Path, frames: Path, tmp_path: Path) -> None:
    checkpoint = reproduced / "data/demo/06_models" / RUN.folder / "best.pt"
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = {
        "predict: set exactly one of predict.run": [f"predict.input={frames}"],
        "holds no files": [f"predict.run={RUN.name}", f"predict.input={empty}"],
        "has no": [f"predict.run={RUN.name.replace('seed42', 'seed7')}", f"predict.input={frames}"],
        "does not hold a mit_b0 + pld network": [
            f"predict.checkpoint={checkpoint}",
            f"predict.input={frames}",
            "model.head_options.pld.fusion=add",
        ],
        "predict.input: ": [f"predict.run={RUN.name}", f"predict.input={tmp_path / 'nowhere'}"],
    }
    for message, params in cases.items():
        result = predict(reproduced, *params, check=False)
        assert result.returncode != 0, params
        assert message in result.stdout + result.stderr, params
    assert not (reproduced / PREDICTIONS / RUN.name / "empty").exists()


def test_export_is_checked_and_served_by_mlflow(reproduced: Path, tmp_path: Path) -> None:
    run = GridRun("synth_kvasir", "mit_b0", "sed", 42)
    kedro(reproduced, "run", "--env=demo", "--pipelines=export", f"--params=export.run={run.name}")
    folder = reproduced / "data/demo/09_inference/exports" / run.name
    report = json.loads((folder / "export.json").read_text())
    assert (folder / "model.onnx").stat().st_size > 100_000
    assert report["onnx_check"]["max_abs_difference"] <= 1e-4
    size = load_parameters(reproduced, "demo")["augmentation"]["image_size"]
    assert [size, size] in [shape[1:] for shape in report["onnx_check"]["shapes"]]

    image = np.random.default_rng(0).standard_normal((1, 3, size, size)).astype(np.float32)
    (tmp_path / "input.json").write_text(json.dumps({"inputs": image.tolist()}))
    served = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlflow",
            "models",
            "predict",
            "-m",
            report["mlflow_model"],
            "-i",
            str(tmp_path / "input.json"),
            "-t",
            "json",
            "-o",
            str(tmp_path / "out.json"),
            "--env-manager",
            "local",
        ],
        cwd=reproduced,
        env={**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{reproduced / 'mlflow.db'}"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert served.returncode == 0, served.stderr[-3000:]
    probabilities = np.array(json.loads((tmp_path / "out.json").read_text())["predictions"])
    with torch.inference_mode():
        expected = ProbabilityModel(trained(reproduced, run).network)(torch.from_numpy(image))
    assert probabilities.shape == (1, 1, size, size)
    assert np.abs(probabilities - expected.numpy()).max() <= 1e-5
