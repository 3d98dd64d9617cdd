"""Screenshot the demo pipeline in kedro-viz, for the README (docs/images/kedro-viz.png).

Serves ``kedro viz run --env=demo`` on loopback, opens it in headless Chromium (Debian's
``chromium`` and ``chromium-driver``, driven by Selenium; all installed by ``.ci/setup --test``)
and saves the flowchart with namespaces collapsed, parameters shown and kedro-viz's first-visit
tour and banners dismissed. tests/viz/test_kedro_viz.py drives the same functions. Regenerate the
picture from the repository root with::

    .venv/bin/python scripts/screenshot_viz.py
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# Headless Chromium on an offline machine: no GPU, no sandbox (root), no calls home.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
VIEWPORT = {"width": 1400, "height": 900}
# kedro-viz keeps its UI settings in localStorage["KedroViz"]: no feature tour, graph left to right,
# sidebar and minimap closed so the flowchart gets the whole page.
VIEW_SETTINGS = {
    "showFeatureHints": False,
    "orientation": "horizontal",
    "visible": {"sidebar": False, "miniMap": False},
}
# What kedro-viz lays over the flowchart of a first visit, each with its close control, clicked: the feature tour ("1 of 6, Workflow run status"; VIEW_SETTINGS asks for none,
# this closes it should it show anyway), the update banner (offline, kedro-viz cannot look up
# its latest release: "Kedro-Viz None is here!", Dismiss) and the lite-mode banner.
OVERLAYS = {
    ".feature-hints": ".feature-hints__close",
    ".update-reminder-unexpanded": ".update-reminder-unexpanded button:nth-of-type(2)",
    ".banner": ".banner-close",
}
# Dismissing the update banner leaves a "Kedro-Viz 12.5.0" tag in the corner, which CSS hides.
VERSION_TAG = ".update-reminder-version-tag"
HIDE_VERSION_TAG = f"""
const style = document.createElement('style');
style.textContent = '{VERSION_TAG} {{ display: none !important; }}';
document.head.appendChild(style);
"""
VISIBLE = """
return arguments[0].filter((css) => [...document.querySelectorAll(css)].some((element) => {
  const box = element.getBoundingClientRect();
  return box.width > 0 && box.height > 0 && getComputedStyle(element).visibility !== 'hidden';
}));
"""
# kedro-viz fits the layout's boxes, which long labels overflow: zoom out (with a wheel event, as
# a user would) just enough that every node lies between the toolbar and the right edge.
SHRINK_TO_FIT = """
const margin = arguments[0];
const graph = document.querySelector('svg.pipeline-flowchart__graph');
const nodes = graph.querySelector('g.pipeline-flowchart__nodes').getBoundingClientRect();
const left = document.querySelector('.pipeline-sidebar').getBoundingClientRect().right + margin;
const right = window.innerWidth - margin;
const factor = Math.min(1, (right - left) / nodes.width, (window.innerHeight - 2 * margin) / nodes.height);
if (factor < 1) {
  // Zooming by `factor` about x keeps x still: pick x so the nodes end up centred.
  const x = ((left + right) / 2 - factor * (nodes.left + nodes.width / 2)) / (1 - factor);
  const y = nodes.top + nodes.height / 2;
  // d3-zoom scales by 2 ** (-deltaY * 0.002) for a pixel-mode wheel event.
  const deltaY = -500 * Math.log2(factor);
  graph.dispatchEvent(new WheelEvent('wheel', {deltaY, clientX: x, clientY: y, bubbles: true, cancelable: true}));
}
"""
FLOWCHART_NODE = "svg.pipeline-flowchart__graph g.pipeline-node"
STARTUP_TIMEOUT_S = 90.0
RENDER_TIMEOUT_S = 30.0


def free_port() -> int:
    """A registered-range TCP port on 127.0.0.1 that is free now (kedro viz refuses ports > 49151)."""
    for port in random.sample(range(20000, 49152), 50):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free TCP port on 127.0.0.1 between 20000 and 49151")


def missing_browser_tools() -> list[str]:
    """What the browser check needs but this machine lacks (empty when all is there)."""
    needed = {
        f"Chromium ({CHROMIUM})": CHROMIUM.is_file(),
        f"ChromeDriver ({CHROMEDRIVER})": CHROMEDRIVER.is_file(),
        "the selenium Python package": importlib.util.find_spec("selenium") is not None,
    }
    return [tool for tool, present in needed.items() if not present]


def fetch_json(url: str) -> Any:
    """GET ``url`` and decode its JSON body."""
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def stop_process_group(process: subprocess.Popen, grace_s: float = 10.0) -> None:
    """Stop ``process`` and every process in its group (kedro viz forks its server)."""
    group = process.pid
    try:
        os.killpg(group, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        process.poll()  # reap the leader, or the group never empties
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    try:
        os.killpg(group, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def wait_for_api(base_url: str, process: subprocess.Popen, log_path: Path) -> None:
    """Wait until the server answers ``/api/main``; fail early if kedro viz exits."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"kedro viz exited with code {process.returncode} before serving {base_url}; "
                f"its output ({log_path}):\n{log_path.read_text()[-4000:]}"
            )
        try:
            fetch_json(f"{base_url}/api/main")
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.3)
    raise TimeoutError(
        f"kedro viz did not answer {base_url}/api/main within {STARTUP_TIMEOUT_S:.0f} s; "
        f"its output ({log_path}):\n{log_path.read_text()[-4000:]}"
    )


@contextmanager
def kedro_viz(project: Path, env: str, port: int, log_path: Path) -> Iterator[str]:
    """Serve ``project`` with ``kedro viz run`` in its own process group; yield its base URL."""
    base_url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "kedro", "viz", "run", "--no-browser"]
    command += ["--host", "127.0.0.1", "--port", str(port), f"--env={env}"]
    environment = {
        **os.environ,
        "KEDRO_DISABLE_TELEMETRY": "1",
        "DO_NOT_TRACK": "true",
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    with log_path.open("w") as log:
        process = subprocess.Popen(
            command,
            cwd=project,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for_api(base_url, process, log_path)
        yield base_url
    finally:
        stop_process_group(process)


@contextmanager
def headless_chromium() -> Iterator[Any]:
    """A Selenium driver for Debian's headless Chromium with a fresh profile, closed on exit."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
            options.add_argument(flag)
        # An explicit driver path keeps Selenium Manager from trying to download one.
        driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
        try:
            driver.execute_cdp_cmd(
                "Emulation.setDeviceMetricsOverride",
                {**VIEWPORT, "deviceScaleFactor": 1, "mobile": False},
            )
            yield driver
        finally:
            driver.quit()


def _wait_until_still(driver: Any, css: str) -> None:
    """Wait until the ``transform`` of ``css`` stops changing (kedro-viz animates its zoom)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    seen: list[str | None] = [None]

    def settled(driver: Any) -> bool:
        transform = driver.find_element(By.CSS_SELECTOR, css).get_attribute("transform")
        still, seen[0] = transform == seen[0], transform
        return still

    WebDriverWait(driver, RENDER_TIMEOUT_S, poll_frequency=0.5).until(settled)


def open_flowchart(driver: Any, base_url: str, pipeline: str = "__default__") -> None:
    """Load ``pipeline``'s flowchart with parameters shown and wait until it is drawn and fitted."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(f"{base_url}/api/version")  # same origin, so the settings land in its storage
    driver.execute_script(
        "localStorage.setItem('KedroViz', arguments[0]);", json.dumps(VIEW_SETTINGS)
    )
    driver.get(f"{base_url}/?pid={pipeline}&types=nodes,datasets,parameters")
    WebDriverWait(driver, RENDER_TIMEOUT_S).until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, FLOWCHART_NODE))
    )
    _wait_until_still(driver, "g.pipeline-zoom-wrapper")
    dismiss_overlays(driver)
    driver.execute_script(SHRINK_TO_FIT, 24)
    _wait_until_still(driver, "g.pipeline-zoom-wrapper")
    dismiss_overlays(driver)  # one that came late


def visible_overlays(driver: Any) -> list[str]:
    """Which of kedro-viz's tour and banners (OVERLAYS, VERSION_TAG) cover part of the page."""
    return driver.execute_script(VISIBLE, [*OVERLAYS, VERSION_TAG])


def dismiss_overlays(driver: Any) -> None:
    """Close kedro-viz's tour and banners that show, and wait until none covers the flowchart
    (the tour's closing message stays 4 s); an overlay that stays is an error naming it."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.execute_script(HIDE_VERSION_TAG)
    for overlay in visible_overlays(driver):
        # A click event, not the pointer: a pointer left there would highlight a layer.
        close = driver.find_element(By.CSS_SELECTOR, OVERLAYS[overlay])
        driver.execute_script("arguments[0].click();", close)
    try:
        WebDriverWait(driver, RENDER_TIMEOUT_S, poll_frequency=0.5).until(
            lambda driver: not visible_overlays(driver)
        )
    except TimeoutException:
        raise RuntimeError(
            f"kedro-viz still shows {visible_overlays(driver)} after closing it; see OVERLAYS "
            "in scripts/screenshot_viz.py"
        ) from None


def flowchart_nodes(driver: Any) -> dict[str, list[str]]:
    """The names of the nodes drawn in the flowchart, by kind (task, data, parameters, ...)."""
    return driver.execute_script(
        """
        const nodes = {};
        for (const node of document.querySelectorAll(arguments[0])) {
          const kind = [...node.classList].find((c) => c.startsWith('pipeline-node--'));
          const key = kind ? kind.slice('pipeline-node--'.length) : 'other';
          (nodes[key] = nodes[key] || []).push(node.textContent.trim());
        }
        return nodes;
        """,
        FLOWCHART_NODE,
    )


def layer_names(driver: Any) -> list[str]:
    """The layer labels drawn beside the flowchart."""
    return driver.execute_script(
        "return [...document.querySelectorAll('.pipeline-layer-name')]"
        ".map((name) => name.textContent.trim());"
    )


def main(argv: list[str] | None = None) -> None:
    """Serve the project in kedro-viz and save a screenshot of its flowchart."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="demo", help="Kedro environment to show (default: demo)")
    parser.add_argument("--pipeline", default="__default__", help="pipeline to show")
    parser.add_argument(
        "--output",
        type=Path,
        default=PROJECT_ROOT / "docs" / "images" / "kedro-viz.png",
        help="PNG to write (default: docs/images/kedro-viz.png)",
    )
    args = parser.parse_args(argv)
    missing = missing_browser_tools()
    if missing:
        parser.error(f"missing {', '.join(missing)}: run .ci/setup --test")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        log_path = Path(scratch) / "kedro-viz.log"
        with (
            kedro_viz(PROJECT_ROOT, args.env, free_port(), log_path) as base_url,
            headless_chromium() as driver,
        ):
            open_flowchart(driver, base_url, args.pipeline)
            driver.save_screenshot(str(args.output))
    print(f"wrote {args.output}")  # noqa: T201


if __name__ == "__main__":
    main()
