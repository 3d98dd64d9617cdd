"""One reader of the parameters, and pipelines built from the parameters of their own session."""

from __future__ import annotations

import pytest
from kedro.framework.project import pipelines
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from ssformer_repro.config.loader import load_parameters, parse_params
from ssformer_repro.grid.runs import parameter_grid
from tests.conftest import clean_project


def training_namespaces() -> set[str]:
    return {node.namespace for node in pipelines["training"].nodes}


def test_load_parameters_is_what_a_kedro_session_sees() -> None:
    params = parse_params("training.epochs=3,reproduce.heads=[sed]")
    bootstrap_project(clean_project())
    with KedroSession.create(clean_project(), env="demo", runtime_params=params) as session:
        seen = session.load_context().config_loader["parameters"]
    assert load_parameters(clean_project(), "demo", params) == seen
    assert seen["training"]["epochs"] == 3 and seen["reproduce"]["heads"] == ["sed"]


def test_each_session_builds_the_pipelines_of_its_own_parameters() -> None:
    bootstrap_project(clean_project())
    with KedroSession.create(clean_project(), env="demo") as session:
        session.load_context()
        demo = training_namespaces()
    # Reading another environment's parameters elsewhere changes nothing ...
    base = load_parameters(clean_project(), "base")
    assert training_namespaces() == demo
    # ... and the next session, of another environment, gets its own grid.
    with KedroSession.create(clean_project(), env="base") as session:
        session.load_context()
        assert training_namespaces() != demo
        assert len(training_namespaces()) == len(parameter_grid(base))
    with KedroSession.create(
        clean_project(), env="demo", runtime_params={"reproduce": {"heads": ["sed"]}}
    ) as session:
        session.load_context()
        assert training_namespaces() == {name for name in demo if ".sed." in name}


def test_params_are_parsed_like_kedro_run_params() -> None:
    assert parse_params("training.epochs=2,reproduce.heads=[sed]") == {
        "training": {"epochs": 2},
        "reproduce": {"heads": ["sed"]},
    }
    assert parse_params(None) == {}
    with pytest.raises(ValueError, match=r"\['epochs'\] are not key=value"):
        parse_params("epochs")
