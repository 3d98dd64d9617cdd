"""GridRun: one value type for a run's fields, name, namespace, folder and place in the grid."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from ssformer_repro.config.loader import load_parameters
from ssformer_repro.grid import runs as grid_module
from ssformer_repro.grid.runs import GridRun, dimension, grid_runs, run_settings
from ssformer_repro.pipeline_registry import register_pipelines
from tests.conftest import clean_project

GRID = {
    "datasets": ["kvasir", "clinicdb"],
    "backbones": ["mit_b0", "mit_b2"],
    "heads": ["pld", "sed"],
    "seeds": [42],
}


def test_a_run_has_one_name_used_as_namespace_and_folder() -> None:
    run = GridRun("kvasir", "mit_b2", "pld", 42)
    assert run.name == run.namespace == "kvasir.mit_b2.pld.seed42"
    assert run.folder == Path("kvasir.mit_b2.pld.seed42")
    assert run.cell == "kvasir.mit_b2.pld"
    assert run.stage == "train@kvasir-mit_b2-pld-42"
    assert run.fields() == {
        "dataset": "kvasir",
        "backbone": "mit_b2",
        "head": "pld",
        "seed": 42,
        "fold": None,
    }
    assert GridRun.parse(run.name) == run


def test_a_fold_is_a_subfolder_of_its_seed_and_shares_its_dvc_stage() -> None:
    run = GridRun("kvasir", "mit_b2", "pld", 42, fold=3)
    assert run.name == "kvasir.mit_b2.pld.seed42.fold3"
    assert run.folder == Path("kvasir.mit_b2.pld.seed42", "fold3")
    assert run.stage == GridRun("kvasir", "mit_b2", "pld", 42).stage
    assert GridRun.parse(run.name) == run


@pytest.mark.parametrize(
    "name",
    ["kvasir.mit_b2", "kvasir.mit_b2.pld", "kvasir.mit_b2.pld.seed1.fold2.extra", ""],
)
def test_a_name_of_another_shape_is_refused_naming_the_parts(name: str) -> None:
    with pytest.raises(ValueError, match=r"<dataset>.<backbone>.<head>.seed<seed>.\[fold<fold>\]"):
        GridRun.parse(name)


def test_the_grid_is_every_combination_in_a_stable_order() -> None:
    names = [run.name for run in grid_runs({**GRID, "seeds": [1, 2]})]
    assert names[:4] == [
        "kvasir.mit_b0.pld.seed1",
        "kvasir.mit_b0.pld.seed2",
        "kvasir.mit_b0.sed.seed1",
        "kvasir.mit_b0.sed.seed2",
    ]
    assert names[-1] == "clinicdb.mit_b2.sed.seed2"
    assert len(names) == 16
    assert names == [run.name for run in grid_runs(dict(GRID, seeds=[1, 2]))]


def test_a_kfold_dataset_adds_its_folds_to_its_runs_only() -> None:
    datasets = {"kvasir": {"split": {"strategy": "kfold", "folds": 3}}, "clinicdb": {}}
    runs = grid_runs({**GRID, "backbones": ["mit_b0"], "heads": ["pld"]}, datasets)
    assert [run.name for run in runs] == [
        "kvasir.mit_b0.pld.seed42.fold0",
        "kvasir.mit_b0.pld.seed42.fold1",
        "kvasir.mit_b0.pld.seed42.fold2",
        "clinicdb.mit_b0.pld.seed42",
    ]


def test_only_narrows_the_grid_by_name_prefix_or_glob() -> None:
    only = "kvasir.mit_b2 *.mit_b0.sed.seed42"
    names = [run.name for run in grid_runs({**GRID, "only": only})]
    assert names == [
        "kvasir.mit_b0.sed.seed42",
        "kvasir.mit_b2.pld.seed42",
        "kvasir.mit_b2.sed.seed42",
        "clinicdb.mit_b0.sed.seed42",
    ]
    with pytest.raises(ValueError, match=r"matches no run of the grid"):
        grid_runs({**GRID, "only": "kvasir.mit_b9"})


def test_an_empty_dimension_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"reproduce.heads is empty"):
        grid_runs({**GRID, "heads": []})


def test_overrides_apply_to_their_run_only_and_merge_nested_keys() -> None:
    shared = {"training": {"epochs": 200, "scheduler": {"name": "poly", "power": 1.0}}}
    reproduce = {"overrides": {"kvasir.mit_b2.pld": {"training": {"scheduler": {"power": 2.0}}}}}
    changed = run_settings(GridRun("kvasir", "mit_b2", "pld", 7), shared, reproduce)
    untouched = run_settings(GridRun("kvasir", "mit_b2", "sed", 7), shared, reproduce)
    scheduler = {"name": "poly", "power": 2.0}
    assert changed["training"] == {"epochs": 200, "scheduler": scheduler, "seed": 7}
    assert untouched["training"] == {**shared["training"], "seed": 7}  # the run's own seed
    assert shared["training"]["scheduler"]["power"] == 1.0  # the shared settings are not changed


@dataclasses.dataclass(frozen=True)
class SizedRun(GridRun):
    """The grid with one more dimension: the training image size, written `px<value>`."""

    size: int = dimension("sizes", prefix="px", default=352)


def test_a_dimension_is_gained_by_the_type_and_the_grid_definition_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    grid = {**GRID, "datasets": ["kvasir"], "backbones": ["mit_b0"], "sizes": [256, 352]}
    monkeypatch.setattr(grid_module, "GridRun", SizedRun)  # the grid's run type, changed
    runs = grid_runs(grid)
    assert [run.name for run in runs] == [
        "kvasir.mit_b0.pld.seed42.px256",
        "kvasir.mit_b0.pld.seed42.px352",
        "kvasir.mit_b0.sed.seed42.px256",
        "kvasir.mit_b0.sed.seed42.px352",
    ]
    assert SizedRun.parse("kvasir.mit_b0.sed.seed42.px256") == SizedRun(
        "kvasir", "mit_b0", "sed", 42, size=256
    )
    assert runs[1].folder == Path("kvasir.mit_b0.pld.seed42.px352")
    with pytest.raises(ValueError, match="seed must be written seed<value>"):
        SizedRun.parse("kvasir.mit_b0.sed.2")

    # The pipelines follow: each seed is its own namespace, and reporting reads every one.
    parameters = load_parameters(clean_project(), "demo")
    parameters["reproduce"] = grid
    pipelines = register_pipelines(parameters)
    assert {node.namespace for node in pipelines["training"].nodes} == {run.name for run in runs}
    assert {f"{run.name}.test_metrics" for run in runs} <= pipelines["reporting"].inputs()


def test_a_dataset_without_a_source_reads_files_as_the_schema_says() -> None:
    from ssformer_repro.pipelines.data_processing.pipeline import create_pipeline

    parameters = load_parameters(clean_project(), "demo")
    for dataset in parameters["datasets"].values():
        dataset.pop("source")
    ingest = [node for node in create_pipeline(parameters).nodes if "ingest" in node.name]
    assert {node.func.__name__ for node in ingest} == {"discover_raw_pairs"}
