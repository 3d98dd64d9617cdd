"""kedro-viz serves the demo study offline, and headless Chromium draws its flowchart."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from kedro.config import OmegaConfigLoader

from scripts.screenshot_viz import (
    RENDER_TIMEOUT_S,
    dismiss_overlays,
    fetch_json,
    flowchart_nodes,
    free_port,
    headless_chromium,
    kedro_viz,
    layer_names,
    missing_browser_tools,
    open_flowchart,
    visible_overlays,
)
from ssformer_repro.grid.runs import grid_runs
from ssformer_repro.settings import CONFIG_LOADER_ARGS
from tests.conftest import copy_project

pytestmark = pytest.mark.slow  # Kedro/DVC/browser runs end to end

# Layers as set in conf/base/catalog.yml, in the order kedro-viz sorts them (upstream first).
CATALOG_LAYERS = ["intermediate", "model_input", "models", "model_output", "reporting", "inference"]
PIPELINES = ["data_processing", "training", "reporting", "reproduce", "__default__", "predict"]
# export is empty until export.run names a run: listed, with nothing to draw.
REGISTERED = [*PIPELINES, "export"]
SKIP_BROWSER = "SSFORMER_SKIP_BROWSER"


@pytest.fixture(scope="module")
def demo_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throw-away copy of the project (code and configuration) for kedro viz to serve."""
    return copy_project(tmp_path_factory.mktemp("viz_project"))


@pytest.fixture(scope="module")
def viz_url(demo_copy: Path) -> Iterator[str]:
    """``kedro viz run --env=demo`` on a free loopback port, stopped with its process group."""
    with kedro_viz(demo_copy, "demo", free_port(), demo_copy / "kedro-viz.log") as base_url:
        yield base_url


def demo_grid(project: Path) -> dict[str, list[str]]:
    """The demo environment's grid (datasets, backbones, heads), read from its configuration."""
    loader = OmegaConfigLoader(conf_source=str(project / "conf"), env="demo", **CONFIG_LOADER_ARGS)
    return loader["parameters"]["reproduce"]


def test_api_lists_the_grid_namespaces(viz_url: str, demo_copy: Path) -> None:
    grid = demo_grid(demo_copy)
    runs = {run.name for run in grid_runs(grid)}
    main = fetch_json(f"{viz_url}/api/main")
    assert {pipeline["id"] for pipeline in main["pipelines"]} == set(REGISTERED)
    assert {*grid["datasets"], *runs, "reporting"} <= set(main["modular_pipelines"])
    assert any(node["type"] == "parameters" for node in main["nodes"])


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_every_dataset_shown_has_a_catalog_layer(viz_url: str, pipeline: str) -> None:
    graph = fetch_json(f"{viz_url}/api/pipelines/{pipeline}")
    datasets = [node for node in graph["nodes"] if node["type"] == "data"]
    assert datasets
    assert [node["name"] for node in datasets if not node["layer"]] == []
    assert set(graph["layers"]) <= set(CATALOG_LAYERS)
    if pipeline == "reproduce":  # the study's layers in data-flow order (kedro-viz lists all)
        study = [layer for layer in graph["layers"] if layer != "inference"]
        assert study == [layer for layer in CATALOG_LAYERS if layer != "inference"]


def require_browser() -> None:
    """Skip where SSFORMER_SKIP_BROWSER=1 says so, fail where Chromium or Selenium is missing."""
    missing = ", ".join(missing_browser_tools())
    if missing and os.environ.get(SKIP_BROWSER) == "1":
        pytest.skip(f"{SKIP_BROWSER}=1 and missing {missing}")
    if missing:
        pytest.fail(
            f"the kedro-viz browser check needs {missing}: run .ci/setup --test "
            f"(or set {SKIP_BROWSER}=1 to skip this check explicitly)",
            pytrace=False,
        )


def test_chromium_draws_the_collapsed_flowchart(
    viz_url: str, demo_copy: Path, tmp_path: Path
) -> None:
    require_browser()
    grid = demo_grid(demo_copy)
    with headless_chromium() as driver:
        open_flowchart(driver, viz_url)
        assert visible_overlays(driver) == []
        nodes = flowchart_nodes(driver)
        layers = layer_names(driver)
        screenshot = tmp_path / "kedro-viz.png"
        assert driver.save_screenshot(str(screenshot))
    # Namespaces collapsed: one node per top-level namespace, none of the namespaced tasks.
    assert sorted(nodes["modularPipeline"]) == sorted([*grid["datasets"], "reporting"])
    assert "task" not in nodes
    assert "params:statistics" in nodes["parameters"]
    assert "reporting.results_table" in nodes["data"]
    assert layers and set(layers) <= set(CATALOG_LAYERS)
    assert screenshot.read_bytes().startswith(b"\x89PNG")


def test_a_first_visits_tour_and_banners_are_dismissed(viz_url: str) -> None:
    require_browser()
    from selenium.webdriver.support.ui import WebDriverWait

    with headless_chromium() as driver:
        driver.get(f"{viz_url}/?pid=__default__")  # kedro-viz's own first-visit settings
        WebDriverWait(driver, RENDER_TIMEOUT_S).until(
            lambda driver: (
                set(visible_overlays(driver)) >= {".feature-hints", ".update-reminder-unexpanded"}
            )
        )
        dismiss_overlays(driver)
        assert visible_overlays(driver) == []
