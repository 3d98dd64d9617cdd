"""The study notebook runs top to bottom on the demo outputs and shows the study's tables."""

from __future__ import annotations

import base64
import os
import shutil
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from ipykernel.kernelspec import write_kernel_spec
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient

from tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.slow  # Kedro/DVC/browser runs end to end

NOTEBOOK = PROJECT_ROOT / "notebooks" / "study_results.ipynb"


def this_interpreter_kernel(kernels_dir: Path) -> AsyncKernelManager:
    """A manager for a python3 kernel run by this interpreter, whatever kernel specs are installed."""
    write_kernel_spec(kernels_dir / "python3")  # its argv[0] is sys.executable
    specs = KernelSpecManager(kernel_dirs=[str(kernels_dir)])
    return AsyncKernelManager(kernel_name="python3", kernel_spec_manager=specs)


@pytest.fixture(scope="module")
def executed(reproduced: Path, tmp_path_factory: pytest.TempPathFactory) -> nbformat.NotebookNode:
    """The notebook, copied into the demo project's notebooks/ and run there as jupyter would."""
    notebook_dir = reproduced / "notebooks"
    notebook_dir.mkdir(exist_ok=True)
    notebook = nbformat.read(shutil.copy(NOTEBOOK, notebook_dir), as_version=4)
    client = NotebookClient(
        notebook,
        km=this_interpreter_kernel(tmp_path_factory.mktemp("kernels")),
        timeout=120,
        resources={"metadata": {"path": str(notebook_dir)}},
    )
    client.execute(env={**os.environ, "KEDRO_ENV": "demo"})  # raises on the first cell error
    return notebook


def outputs(notebook: nbformat.NotebookNode, mime_type: str) -> list[str]:
    """Every output of the notebook's code cells of one MIME type, in order."""
    return [
        output["data"][mime_type]
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if mime_type in output.get("data", {})
    ]


def test_committed_notebook_has_no_outputs() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code_cells and all(not cell.outputs for cell in code_cells)
    assert all(cell.execution_count is None for cell in code_cells)


def test_notebook_runs_without_errors(executed: nbformat.NotebookNode) -> None:
    code_cells = [cell for cell in executed.cells if cell.cell_type == "code"]
    assert all(cell.execution_count is not None for cell in code_cells)
    errors = [out for cell in code_cells for out in cell.outputs if out.output_type == "error"]
    assert errors == []


def test_notebook_shows_the_study_tables(reproduced: Path, executed: nbformat.NotebookNode) -> None:
    html = outputs(executed, "text/html")
    reporting = reproduced / "data/demo/08_reporting"
    for table, decimals in (
        ("results_table.csv", 2),
        ("runs.csv", 2),
        ("published_comparison.csv", 2),
        ("toolbox_metrics.csv", 4),
    ):
        expected = pd.read_csv(reporting / table).round(decimals)._repr_html_()
        assert expected in html, f"{table} is not shown"


def test_notebook_shows_curves_overlays_and_saved_figures(
    reproduced: Path, executed: nbformat.NotebookNode
) -> None:
    reporting = reproduced / "data/demo/08_reporting"
    runs = pd.read_csv(reporting / "runs.csv")
    images = outputs(executed, "image/png")
    # Its own curves plot, the five study figures (curves, bars, forest plot, where the heads
    # differ, NSD gallery), one overlay per run, one preview per dataset.
    assert len(images) == 1 + 5 + len(runs) + runs["dataset"].nunique()
    saved = [*reporting.glob("predictions/*/*.png"), *reporting.glob("*.png")]
    assert len(saved) == 5 + len(runs) + runs["dataset"].nunique()
    for png in saved:
        assert base64.b64encode(png.read_bytes()).decode() in images, f"{png.name} is not shown"
    markdown = "\n".join(outputs(executed, "text/markdown"))
    for run in runs["run"]:
        assert f"`{run}`" in markdown
