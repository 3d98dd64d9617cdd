"""The data_processing pipeline end to end on the demo environment, through the kedro CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ssformer_repro.config.loader import load_parameters
from tests.conftest import kedro

pytestmark = pytest.mark.slow  # Kedro/DVC/browser runs end to end

DEMO_DATASETS = ("synth_kvasir", "synth_clinicdb")


@pytest.fixture(scope="module")
def processed(demo_project: Path) -> Path:
    kedro(demo_project, "run", "--pipelines=data_processing", "--env=demo")
    return demo_project


@pytest.mark.parametrize("name", DEMO_DATASETS)
def test_demo_run_writes_manifest_cache_summary_and_figure(processed: Path, name: str) -> None:
    manifest = pd.read_csv(processed / f"data/demo/05_model_input/{name}_split.csv", dtype=str)
    assert list(manifest.columns) == ["id", "image_path", "mask_path", "split", "subset"]
    parameters = load_parameters(processed, "demo")
    split = parameters["datasets"][name]["split"]
    n, val, test = len(manifest), split["val_fraction"], split["test_fraction"]
    counts = manifest["split"].value_counts().to_dict()
    assert counts == {
        "train": n - round(val * n) - round(test * n),
        "val": round(val * n),
        "test": round(test * n),
    }
    assert all((processed / path).is_file() for path in manifest["image_path"])

    summary = pd.read_csv(
        processed / f"data/demo/08_reporting/{name}_summary.csv", dtype={"id": str}
    )
    assert list(summary.columns) == ["id", "split", "height", "width", "foreground_fraction"]
    assert sorted(summary["id"]) == sorted(manifest["id"])
    assert (summary["foreground_fraction"] > 0).all()
    assert (processed / f"data/demo/08_reporting/{name}_overview.csv").is_file()
    assert (processed / f"data/demo/08_reporting/{name}_augmentations.png").stat().st_size > 10_000

    cache = processed / f"data/demo/05_model_input/{name}_cache"
    images = np.load(cache / "images.npy", mmap_mode="r")
    size = parameters["data_processing"]["cache_size"]
    assert images.shape == (counts["train"] + counts["val"], size, size, 3)


def test_second_run_gives_byte_identical_manifests(processed: Path) -> None:
    manifests = [processed / f"data/demo/05_model_input/{name}_split.csv" for name in DEMO_DATASETS]
    before = [path.read_bytes() for path in manifests]
    kedro(processed, "run", "--pipelines=data_processing", "--env=demo")
    assert [path.read_bytes() for path in manifests] == before


def test_missing_real_dataset_fails_with_download_hint(demo_project: Path) -> None:
    result = kedro(
        demo_project, "run", "--pipelines=data_processing", "--namespaces=kvasir", check=False
    )
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "kvasir-seg" in output
    assert "datasets.simula.no" in output
