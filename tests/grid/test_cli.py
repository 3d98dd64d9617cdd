"""`python -m ssformer_repro.grid run` under torchrun: the ranks other than 0 join training."""

from __future__ import annotations

from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from kedro.io import DataCatalog
from kedro.pipeline import Node

from ssformer_repro.grid import cli
from ssformer_repro.grid.run_config import RunConfig
from tests.conftest import copy_project

RUN = "synth_kvasir.mit_b0.pld.seed43"


def test_another_rank_trains_with_the_checked_run_configuration(tmp_path, monkeypatch) -> None:
    """Rank 0's hook saves `<run>.run_config`; another rank, which runs no hooks, resolves and
    checks it itself and loads the run's other inputs from the catalog."""
    loaded, called = [], {}
    monkeypatch.setattr(DataCatalog, "load", lambda self, name, *args: loaded.append(name))
    monkeypatch.setattr(Node, "run", lambda self, inputs: called.update(inputs))
    project = copy_project(tmp_path / "project")
    bootstrap_project(project)
    params = {"training": {"epochs": 2}}
    with KedroSession.create(project, env="demo", runtime_params=params) as session:
        cli._train_alongside_rank_zero(session, RUN)

    config = called.pop(f"{RUN}.run_config")
    assert isinstance(config, RunConfig) and config.run.name == RUN
    assert config.training.epochs == 2 and config.training.seed == 43
    others = ["synth_kvasir.decoded_cache", "synth_kvasir.split_manifest", f"{RUN}.run_folder"]
    assert sorted(called) == sorted(loaded) == sorted(others)
