"""The project's `kedro run`: Kedro's own, with lists in `--params` and user errors in one line.

Kedro picks up a project's `cli.py` and uses its `run` for `kedro run` and
`python -m ssformer_repro` (https://docs.kedro.org/en/stable/extend/common_use_cases/). This one
calls Kedro's run command with the same options, and changes two things:

- `--params` keeps the commas inside ``[...]`` and ``{...}`` with their value, so that
  `--params reproduce.heads=[pld,sed],training.epochs=1` gives a list (Kedro's own splits at
  every comma, kedro-org/kedro#2552); `config.loader.parse_params` reads it;
- an error the user can fix (`errors.UserError`: a refused re-run, a selection that matches no
  run, an empty dataset folder, an existing output folder, an unknown `--env`, ...) ends as
  its message on one `Error:` line and exit status 1, as the configuration check's errors do;
  `--verbose` shows its traceback too.

It adds `--check`: the start-of-run check (hooks.ConfigurationCheckHook) alone, which prints
where the parameters come from and what the run would process and train, and runs nothing.
"""

from __future__ import annotations

import copy
from typing import Any

import click
from kedro.framework.cli.project import run as kedro_run

from ssformer_repro.config.loader import parse_params
from ssformer_repro.errors import UserError


def _params(ctx: click.Context, param: click.Parameter, value: Any) -> dict[str, Any]:
    if isinstance(value, dict):  # from a `--config` file, already nested
        return value
    try:
        return parse_params(value)
    except ValueError as error:
        raise click.BadParameter(str(error), ctx=ctx, param=param) from error


def _options() -> list[click.Parameter]:
    """Kedro's `run` options, `--params` read by `parse_params`, and `--verbose`."""
    params = next(option for option in kedro_run.params if option.name == "params")
    ours = copy.copy(params)
    ours.callback = _params
    ours.help = (
        "Parameters to override, as key=value pairs separated by commas, each value in YAML: "
        "training.epochs=2,reproduce.seeds=[42,43]. Nested keys take dots."
    )
    options = [ours if option is params else option for option in kedro_run.params]
    verbose = click.Option(
        ["--verbose", "-v"], is_flag=True, help="Show the traceback of an error, too."
    )
    check = click.Option(
        ["--check"],
        is_flag=True,
        help="Check the configuration and say what the run would do; run nothing.",
    )
    return [*options, check, verbose]


def _run(check: bool, verbose: bool, **options: Any) -> Any:
    from ssformer_repro import settings

    settings.CONFIGURATION_CHECK.check_only = check
    try:
        return kedro_run.callback(**options)
    except UserError as error:
        if verbose:
            raise
        raise click.ClickException(str(error)) from error


@click.group(name="ssformer-repro")
def cli() -> None:
    """The commands of the ssformer-repro project."""


run = click.Command(
    name="run",
    callback=_run,
    params=_options(),
    help=kedro_run.help,
    context_settings=kedro_run.context_settings,
)
cli.add_command(run)
