"""The training pipeline's nodes on the outputs of the demo run."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from kedro.config import OmegaConfigLoader

from ssformer_repro.pipelines.training.nodes import evaluate_run
from ssformer_repro.settings import CONFIG_LOADER_ARGS

RUN = {
    "name": "synth_kvasir.mit_b0.sed",
    "dataset": "synth_kvasir",
    "backbone": "mit_b0",
    "head": "sed",
}


def evaluate(project: Path, **evaluation_changes) -> dict:
    """`evaluate_run` of the demo's synth_kvasir.mit_b0.sed, with changed evaluation settings."""
    loader = OmegaConfigLoader(conf_source=str(project / "conf"), env="demo", **CONFIG_LOADER_ARGS)
    parameters = loader["parameters"]
    manifest = pd.read_csv(
        project / "data/demo/05_model_input/synth_kvasir_split.csv",
        dtype={"id": str},
        keep_default_na=False,
    )
    summary = json.loads(
        (project / "data/demo/06_models/synth_kvasir/mit_b0-sed/summary.json").read_text()
    )
    _, metrics, _ = evaluate_run(
        manifest,
        summary,
        parameters["augmentation"],
        parameters["model"],
        {**parameters["evaluation"], **evaluation_changes},
        parameters["reproduce"],
        {**parameters["tracking"], "enabled": False},
        RUN,
    )
    return metrics


def test_evaluation_runs_in_fp32_unless_mixed_precision_is_asked_on_cuda(
    reproduced: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(reproduced)  # the manifest's paths are relative to the project
    stored = json.loads(
        (
            reproduced / "data/demo/07_model_output/synth_kvasir/mit_b0-sed/test_metrics.json"
        ).read_text()
    )

    assert evaluate(reproduced, amp="auto", device="cpu")["mdice"] == stored["mdice"]
    with pytest.raises(ValueError, match="amp mode 'bf16' needs a CUDA device"):
        evaluate(reproduced, amp="bf16", device="cpu")
