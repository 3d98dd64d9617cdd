"""A Kedro command's nodes run by a plain loop: the baseline of the benchmark's kedro section.

`python -m ssformer_repro.benchmark.plain_run <kedro run arguments>` takes the arguments the
kedro section times (`--pipelines`, `--namespaces`, `--env`, `--params`) and runs the same nodes,
in the same order, on the same catalog and parameters, with no Kedro session, CLI, runner or
hooks: no configuration check, run lock, MLflow parent run or run timing. The difference of the
two wall times is what `kedro run` adds around the work.
"""

from __future__ import annotations

import argparse
import logging
import operator
from collections.abc import Sequence
from functools import reduce
from pathlib import Path
from typing import Any

from kedro.io import DataCatalog
from kedro.pipeline import Pipeline
from omegaconf import OmegaConf

from ssformer_repro.pipeline_registry import register_pipelines
from ssformer_repro.project_config import ProjectConfigLoader
from ssformer_repro.settings import CONFIG_LOADER_ARGS

PARAMS_PREFIX = "params:"


def parse_params(text: str | None) -> dict[str, Any]:
    """`a.b=1,c=x` read as `kedro run --params` reads it (OmegaConf's dot-list)."""
    items = [item.strip() for item in (text or "").split(",") if item.strip()]
    return OmegaConf.to_container(OmegaConf.from_dotlist(items))


def run_nodes(pipeline: Pipeline, catalog: DataCatalog, parameters: dict[str, Any]) -> None:
    """Run `pipeline`'s nodes in order, loading and saving catalog datasets, others in memory."""
    memory: dict[str, Any] = {}

    def load(name: str) -> Any:
        if name.startswith(PARAMS_PREFIX):
            return reduce(operator.getitem, name.removeprefix(PARAMS_PREFIX).split("."), parameters)
        return memory[name] if name in memory else catalog.load(name)

    for node in pipeline.nodes:  # Kedro keeps them in topological order
        outputs = node.run({name: load(name) for name in node.inputs})
        for name, data in outputs.items():
            if name in catalog:
                catalog.save(name, data)
            else:
                memory[name] = data


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the kedro-run arguments and run their nodes in the current project folder."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["run"])
    parser.add_argument("--pipelines", default="__default__")
    parser.add_argument("--namespaces", default=None)
    parser.add_argument("--env", default=None)
    parser.add_argument("--params", default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    loader = ProjectConfigLoader(
        conf_source=str(Path.cwd() / "conf"),
        env=args.env,
        runtime_params=parse_params(args.params),
        **CONFIG_LOADER_ARGS,
    )
    pipeline = register_pipelines()[args.pipelines]  # reads the grid of `loader`'s environment
    if args.namespaces:
        pipeline = pipeline.only_nodes_with_namespaces(args.namespaces.split(","))
    run_nodes(pipeline, DataCatalog.from_config(loader["catalog"]), loader["parameters"])


if __name__ == "__main__":
    main()
