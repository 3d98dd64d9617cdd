"""The training pipeline's nodes on the outputs of the demo run."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from ssformer_repro.config.loader import load_parameters
from ssformer_repro.grid.run_config import resolve_run
from ssformer_repro.grid.runs import GridRun
from ssformer_repro.pipelines.training import nodes

pytestmark = pytest.mark.slow  # Kedro/DVC/browser runs end to end

RUN = GridRun("synth_kvasir", "mit_b0", "sed", 42)


def evaluate(project: Path, **evaluation_changes) -> tuple[pd.DataFrame, dict]:
    """The `evaluate` node of the demo's synth_kvasir.mit_b0.sed.seed42, with changed settings:
    its per-image scores and test metrics."""
    parameters = load_parameters(project, "demo")
    manifest = pd.read_csv(
        project / "data/demo/05_model_input/synth_kvasir_split.csv",
        dtype={"id": str},
        keep_default_na=False,
    )
    summary = json.loads(
        (project / "data/demo/06_models" / RUN.folder / "summary.json").read_text()
    )
    size_strata = json.loads(
        (project / "data/demo/05_model_input/synth_kvasir_size_strata.json").read_text()
    )
    parameters["evaluation"] = {**parameters["evaluation"], **evaluation_changes}
    return nodes.evaluate(
        resolve_run(RUN, parameters),
        manifest,
        size_strata,
        summary,
        None,  # no run folder: scored afresh, nothing kept
    )


def test_evaluation_runs_in_fp32_unless_mixed_precision_is_asked(
    reproduced: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(reproduced)  # the manifest's paths are relative to the project
    stored = json.loads(
        (reproduced / "data/demo/07_model_output" / RUN.folder / "test_metrics.json").read_text()
    )

    assert evaluate(reproduced, amp="auto", device="cpu")[1]["mdice"] == stored["mdice"]  # fp32
    bf16 = evaluate(reproduced, amp="bf16", device="cpu")[1]["mdice"]  # bf16 autocast on the CPU
    assert abs(bf16 - stored["mdice"]) < 0.02


def test_with_tta_every_score_is_kept_without_it_too(
    reproduced: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(reproduced)
    per_image, metrics = evaluate(reproduced, tta="hflip", device="cpu")
    for column in ("dice", "iou", "nsd", "hd95", "empty_mask"):
        assert f"{column}_without_tta" in per_image
    without = metrics["without_tta"]
    assert {"mdice", "miou", "mnsd", "mhd95", "hd95_undefined"} <= set(without)
    assert without["mnsd"] == pytest.approx(per_image["nsd_without_tta"].mean())
    tolerance = load_parameters(reproduced, "demo")["evaluation"]["nsd_tolerance"]
    assert metrics["nsd_tolerance"] == tolerance
    assert "Metrics Reloaded" in metrics["boundary_convention"]
