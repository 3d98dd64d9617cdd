"""GridRun: one value type for a run's fields, name, namespace, folder and place in the grid."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from ssformer_repro.config.loader import load_parameters
from ssformer_repro.grid import runs as grid_module
from ssformer_repro.grid.runs import GridRun, dimension, grid_runs, run_settings
from ssformer_repro.pipeline_registry import register_pipelines
from tests.conftest import PROJECT_ROOT

GRID = {
    "datasets": ["kvasir", "clinicdb"],
    "backbones": ["mit_b0", "mit_b2"],
    "heads": ["pld", "sed"],
}


def test_a_run_has_one_name_used_as_namespace_and_folder() -> None:
    run = GridRun("kvasir", "mit_b2", "pld")
    assert run.name == run.namespace == "kvasir.mit_b2.pld"
    assert run.folder == Path("kvasir.mit_b2.pld")
    assert run.fields() == {"dataset": "kvasir", "backbone": "mit_b2", "head": "pld"}
    assert GridRun.parse(run.name) == run


@pytest.mark.parametrize("name", ["kvasir.mit_b2", "kvasir.mit_b2.pld.extra", ""])
def test_a_name_of_another_shape_is_refused_naming_the_parts(name: str) -> None:
    with pytest.raises(ValueError, match=r"<dataset>.<backbone>.<head>"):
        GridRun.parse(name)


def test_the_grid_is_every_combination_in_a_stable_order() -> None:
    names = [run.name for run in grid_runs(GRID)]
    assert names == [
        "kvasir.mit_b0.pld",
        "kvasir.mit_b0.sed",
        "kvasir.mit_b2.pld",
        "kvasir.mit_b2.sed",
        "clinicdb.mit_b0.pld",
        "clinicdb.mit_b0.sed",
        "clinicdb.mit_b2.pld",
        "clinicdb.mit_b2.sed",
    ]
    assert names == [run.name for run in grid_runs(dict(GRID))]


def test_an_empty_dimension_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"reproduce.heads is empty"):
        grid_runs({**GRID, "heads": []})


def test_overrides_apply_to_their_run_only_and_merge_nested_keys() -> None:
    shared = {"training": {"epochs": 200, "scheduler": {"name": "poly", "power": 1.0}}}
    reproduce = {"overrides": {"kvasir.mit_b2.pld": {"training": {"scheduler": {"power": 2.0}}}}}
    changed = run_settings(GridRun("kvasir", "mit_b2", "pld"), shared, reproduce)
    untouched = run_settings(GridRun("kvasir", "mit_b2", "sed"), shared, reproduce)
    assert changed["training"] == {"epochs": 200, "scheduler": {"name": "poly", "power": 2.0}}
    assert untouched == shared
    assert shared["training"]["scheduler"]["power"] == 1.0  # the shared settings are not changed


@dataclasses.dataclass(frozen=True)
class SeededRun(GridRun):
    """The grid with one more dimension: the training seed, written `seed<value>`."""

    seed: int = dimension("seeds", prefix="seed")


def test_a_dimension_is_gained_by_the_type_and_the_grid_definition_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    grid = {**GRID, "datasets": ["kvasir"], "backbones": ["mit_b0"], "seeds": [1, 2]}
    monkeypatch.setattr(grid_module, "GridRun", SeededRun)  # the grid's run type, changed
    runs = grid_runs(grid)
    assert [run.name for run in runs] == [
        "kvasir.mit_b0.pld.seed1",
        "kvasir.mit_b0.pld.seed2",
        "kvasir.mit_b0.sed.seed1",
        "kvasir.mit_b0.sed.seed2",
    ]
    assert SeededRun.parse("kvasir.mit_b0.sed.seed2") == SeededRun("kvasir", "mit_b0", "sed", 2)
    assert runs[1].folder == Path("kvasir.mit_b0.pld.seed2")
    with pytest.raises(ValueError, match="seed must be written seed<value>"):
        SeededRun.parse("kvasir.mit_b0.sed.2")

    # The pipelines follow: each seed is its own namespace, and reporting reads every one.
    parameters = load_parameters(PROJECT_ROOT, "demo")
    parameters["reproduce"] = grid
    pipelines = register_pipelines(parameters)
    assert {node.namespace for node in pipelines["training"].nodes} == {run.name for run in runs}
    assert {f"{run.name}.test_metrics" for run in runs} <= pipelines["reporting"].inputs()
