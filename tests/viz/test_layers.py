"""The catalog's kedro-viz layers follow the data: no path leads from a layer back to an earlier one.

kedro-viz orders layers by the data flow and, where layers form a cycle, draws none at all
(the slow test_kedro_viz checks the drawing; this checks the cause in seconds)."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import pytest
from kedro.framework.project import pipelines
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from tests.conftest import copy_project


def layer_of(catalog, name: str) -> str | None:  # noqa: ANN001
    """The kedro-viz layer of a catalog dataset; None for parameters and memory datasets."""
    if name.startswith("params:") or name == "parameters" or name not in catalog:
        return None
    metadata = getattr(catalog.get(name), "metadata", None) or {}
    return metadata.get("kedro-viz", {}).get("layer")


def namespaces(pipeline) -> set[str]:  # noqa: ANN001
    """Every namespace of `pipeline`'s nodes and each of its parents ("a.b" gives "a", "a.b")."""
    parts = [node.namespace.split(".") for node in pipeline.nodes if node.namespace]
    return {".".join(part[:level]) for part in parts for level in range(1, len(part) + 1)}


def in_namespace(node, namespace: str) -> bool:  # noqa: ANN001
    """Whether `node` lies in `namespace` or below it."""
    return bool(node.namespace) and f"{node.namespace}.".startswith(f"{namespace}.")


@pytest.mark.parametrize("env", ["demo", "base"])
def test_the_study_s_layers_form_no_cycle(tmp_path: Path, env: str) -> None:
    project = copy_project(tmp_path / "project")
    bootstrap_project(project)
    with KedroSession.create(project, env=env) as session:
        catalog = session.load_context().catalog
    data_flow = nx.DiGraph()  # datasets and nodes, as kedro-viz draws them
    for node in pipelines["reproduce"].nodes:
        data_flow.add_edges_from((name, node.name) for name in node.inputs)
        data_flow.add_edges_from((node.name, name) for name in node.outputs)
    # kedro-viz also draws each namespace (at every level) as one node, from the datasets its
    # nodes read but do not make to those it makes.
    for namespace in namespaces(pipelines["reproduce"]):
        inside = [node for node in pipelines["reproduce"].nodes if in_namespace(node, namespace)]
        made = {name for node in inside for name in node.outputs}
        read = {name for node in inside for name in node.inputs}
        data_flow.add_edges_from((name, f"namespace {namespace}") for name in read - made)
        outside = {
            name
            for node in pipelines["reproduce"].nodes
            if node not in inside
            for name in node.inputs
        }
        leaving = {name for name in made if name in outside or name not in read}
        data_flow.add_edges_from((f"namespace {namespace}", name) for name in leaving)
    layers = {name: layer_of(catalog, name) for name in pipelines["reproduce"].datasets()}
    # kedro-viz orders two layers where a path (through unlayered datasets too) joins them.
    flow = nx.DiGraph()
    for name, layer in layers.items():
        if layer is None:
            continue
        for later in nx.descendants(data_flow, name):
            if layers.get(later) not in (None, layer):
                flow.add_edge(layer, layers[later], path=(name, later))
    cycles = list(nx.simple_cycles(flow))
    assert cycles == [], f"layers in a cycle: {cycles}; through {flow.edges(data='path')}"
