"""The experiment grid from the command line: list its runs, or train and evaluate one of them.

Once data_processing has written its outputs, every run of the grid ("<dataset>.<backbone>.<head>.seed<seed>[.fold<k>]")
is independent, so runs can go to separate processes, jobs or machines (docs/scaling.md)::

    python -m ssformer_repro.grid list --env base             # the run names, one per line
    python -m ssformer_repro.grid run kvasir.mit_b2.pld.seed42   # one run, in this process
    torchrun --nproc_per_node=4 -m ssformer_repro.grid run kvasir.mit_b2.pld.seed42  # 4 GPUs

`run` is `kedro run --pipelines=training --namespaces=<run>` that also works under torchrun:
rank 0 runs that Kedro pipeline as usual (hooks, MLflow, saved outputs, test evaluation), while
the other ranks only call the run's `train` node with the same inputs (the run's configuration
resolved and checked as the start-of-run check does, the rest from the catalog), so they join
its data-parallel training and then exit without saving or logging anything. Plain
`torchrun -m kedro run` would make every rank a full Kedro session: N MLflow runs, N processes
saving the same files at once, and N evaluations.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ssformer_repro.config.loader import load_parameters, parse_params
from ssformer_repro.errors import UserError

TRAINING_PIPELINE = "training"


def grid_run_names_of(
    project_path: Path, env: str | None, params: dict[str, Any] | None = None
) -> list[str]:
    """The run names of the grid that `kedro run --env <env> --params <params>` would run.

    It reads the configuration without a Kedro session, whose start-up logs to stdout, so that
    `list` prints nothing but the names.
    """
    from ssformer_repro.grid.runs import parameter_grid

    return [run.name for run in parameter_grid(load_parameters(project_path, env, params))]


def run_one(
    project_path: Path, run_name: str, env: str | None, params: dict[str, Any] | None = None
) -> None:
    """Train and evaluate one run of the grid, alone or as one rank of a torchrun launch."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    from ssformer_repro.grid.runs import GridError
    from ssformer_repro.training.distributed import DistributedContext

    names = grid_run_names_of(project_path, env, params)
    if run_name not in names:
        raise GridError(
            f"{run_name!r} is not a run of the grid of env {env or 'local'!r}; its runs: "
            f"{', '.join(names)} (see `python -m ssformer_repro.grid list`)."
        )
    bootstrap_project(project_path)
    with KedroSession.create(project_path, env=env, runtime_params=params) as session:
        if DistributedContext.from_env().is_main:
            session.run(pipeline_names=[TRAINING_PIPELINE], namespaces=[run_name])
        else:
            _train_alongside_rank_zero(session, run_name)


def _train_alongside_rank_zero(session, run_name: str) -> None:
    """Call the run's `train` node on rank 0's inputs and drop its outputs (rank 0 saves)."""
    from kedro.framework.project import pipelines

    from ssformer_repro.config.checks import checked_run
    from ssformer_repro.grid.runs import GridRun

    context = session.load_context()
    train = next(
        node for node in pipelines[TRAINING_PIPELINE].nodes if node.name == f"{run_name}.train"
    )
    # The hook that saves `<run>.run_config` runs in rank 0's session only.
    config_name = f"{run_name}.run_config"
    inputs = {name: context.catalog.load(name) for name in train.inputs if name != config_name}
    inputs[config_name] = checked_run(GridRun.parse(run_name), context.params)
    train.run(inputs)


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: ``list`` the grid's runs, or ``run`` one of them."""
    parser = argparse.ArgumentParser(
        prog="python -m ssformer_repro.grid",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--project-path", type=Path, default=Path.cwd(), help="default: cwd")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("list", "print the grid's run names, one per line"),
        ("run", "train and evaluate one run (under torchrun: on several GPUs)"),
    ):
        command = commands.add_parser(name, help=help_text)
        if name == "run":
            command.add_argument("run_name", help="<dataset>.<backbone>.<head>")
        command.add_argument("--env", default=None, help="Kedro environment, e.g. base or demo")
        command.add_argument("--params", default=None, help="as kedro run --params: a.b=1,c=2")
    args = parser.parse_args(argv)

    project_path = args.project_path.resolve()
    try:
        params = parse_params(args.params)
    except ValueError as err:
        parser.error(str(err))
    try:
        if args.command == "list":
            names = grid_run_names_of(project_path, args.env, params)
            sys.stdout.write("".join(f"{name}\n" for name in names))
        else:
            run_one(project_path, args.run_name, args.env, params)
    except UserError as error:  # what the user can fix: its message alone, as `kedro run`
        parser.exit(1, f"Error: {error}\n")
