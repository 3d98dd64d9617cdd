"""One reader of the parameters, and pipelines built from the parameters of their own session."""

from __future__ import annotations

from pathlib import Path

import pytest
from kedro.framework.project import pipelines
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from ssformer_repro.config.loader import (
    UnknownEnvironmentError,
    load_parameters,
    parse_params,
    project_config,
    tracked_parameters,
)
from ssformer_repro.grid.runs import parameter_grid
from tests.conftest import copy_project


def training_namespaces() -> set[str]:
    return {node.namespace for node in pipelines["training"].nodes}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the project: sessions read its conf/local, not the checkout's."""
    return copy_project(tmp_path_factory.mktemp("loader"))


def test_load_parameters_is_what_a_kedro_session_sees(project: Path) -> None:
    params = parse_params("training.epochs=3,reproduce.heads=[sed]")
    bootstrap_project(project)
    with KedroSession.create(project, env="demo", runtime_params=params) as session:
        seen = session.load_context().config_loader["parameters"]
    assert load_parameters(project, "demo", params) == seen
    assert seen["training"]["epochs"] == 3 and seen["reproduce"]["heads"] == ["sed"]


def test_each_session_builds_the_pipelines_of_its_own_parameters(project: Path) -> None:
    bootstrap_project(project)
    with KedroSession.create(project, env="demo") as session:
        session.load_context()
        demo = training_namespaces()
    # Reading another environment's parameters elsewhere changes nothing ...
    base = load_parameters(project, "base")
    assert training_namespaces() == demo
    # ... and the next session, of another environment, gets its own grid.
    with KedroSession.create(project, env="base") as session:
        session.load_context()
        assert training_namespaces() != demo
        assert len(training_namespaces()) == len(parameter_grid(base))
    with KedroSession.create(
        project, env="demo", runtime_params={"reproduce": {"heads": ["sed"]}}
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


def test_params_carry_lists_and_mappings() -> None:
    assert parse_params("reproduce.heads=[pld,sed],training.epochs=1") == {
        "reproduce": {"heads": ["pld", "sed"]},
        "training": {"epochs": 1},
    }
    assert parse_params("reproduce.overrides={a.b: {training: {lr: 0.1, epochs: 2}}}") == {
        "reproduce": {"overrides": {"a.b": {"training": {"lr": 0.1, "epochs": 2}}}}
    }
    assert parse_params("reproduce.only=kvasir.mit_b0 clinicdb.*.sed") == {
        "reproduce": {"only": "kvasir.mit_b0 clinicdb.*.sed"}
    }
    with pytest.raises(ValueError, match="not key=value pairs of YAML"):
        parse_params("reproduce.heads=[pld,sed")


@pytest.fixture
def conf_copy(tmp_path: Path) -> Path:
    """A copy of the project, without the checkout's conf/local."""
    return copy_project(tmp_path)


@pytest.mark.parametrize("env", [None, "base", "demo", "paper"])
def test_conf_local_is_layered_over_every_environment(conf_copy: Path, env: str | None) -> None:
    tracked = load_parameters(conf_copy, env)
    (conf_copy / "conf/local/parameters_reproduce.yml").write_text("reproduce:\n  seeds: [7, 8]\n")
    (conf_copy / "conf/local/credentials.yml").write_text("store: {token: secret}\n")
    loader = project_config(conf_copy, env, {"training": {"epochs": 1}})
    parameters = loader["parameters"]
    assert parameters["reproduce"]["seeds"] == [7, 8]
    assert parameters["reproduce"]["backbones"] == tracked["reproduce"]["backbones"]
    assert parameters["training"]["epochs"] == 1  # --params over conf/local
    assert loader["credentials"] == {"store": {"token": "secret"}}
    assert tracked_parameters(conf_copy, env)["reproduce"]["seeds"] == tracked["reproduce"]["seeds"]


def test_conf_local_globals_stay_with_the_default_environment(conf_copy: Path) -> None:
    (conf_copy / "conf/local/globals.yml").write_text("data_root: /elsewhere\n")
    (conf_copy / "conf/local/parameter_typo.yml").write_text("reproduce: {seeds: [1]}\n")
    assert project_config(conf_copy, None)["globals"]["data_root"] == "/elsewhere"
    demo = project_config(conf_copy, "demo")
    assert demo["globals"]["data_root"] == "data/demo"  # the demo never writes into the study's
    local = conf_copy / "conf/local"
    assert demo.unread_files() == {
        local / "globals.yml": "globals",
        local / "parameter_typo.yml": None,
    }


def test_an_unknown_environment_is_named_with_the_known_ones(conf_copy: Path) -> None:
    with pytest.raises(UnknownEnvironmentError, match=r"--env=demoo: .*: base, demo, local, paper"):
        load_parameters(conf_copy, "demoo")
