"""Building the pipelines (every `kedro` command, kedro-viz) imports neither torch nor scipy: the
nodes import them when they run."""

import subprocess
import sys

from tests.conftest import clean_project

SCRIPT = """
import sys
from pathlib import Path
from ssformer_repro.config.loader import load_parameters
from ssformer_repro.pipeline_registry import register_pipelines
from ssformer_repro.pipelines.data_processing.pipeline import create_pipeline as data_processing
from ssformer_repro.pipelines.training.pipeline import create_pipeline as training
parameters = load_parameters(Path(sys.argv[1]), "demo")
data_processing(parameters), training(parameters)
print(sorted(name for name in ("torch", "scipy", "sklearn") if name in sys.modules))
"""


def test_building_the_pipelines_imports_no_heavy_library() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(clean_project())],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"
