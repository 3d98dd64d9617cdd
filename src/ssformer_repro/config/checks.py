"""Check the whole configuration before any work: one short message per problem, with its path.

A study of many GPU-hours should not fail after hours on a typo. `check_configuration` validates
the resolved parameters against the schema (config/schema.py), every grid run's own settings
(its `reproduce.overrides` entries merged in) on the device it will run on, the files the
configuration names, and the override keys; `ConfigurationCheckHook` (hooks.py) calls it for
the datasets and runs a `kedro run` is about to execute.
"""

from __future__ import annotations

import functools
import typing
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import click
from pydantic import BaseModel, ValidationError

from ssformer_repro.config.schema import Parameters
from ssformer_repro.errors import UserError
from ssformer_repro.grid.run_config import RUN_BLOCKS, RunConfig, run_values
from ssformer_repro.grid.runs import GridRun, grid_runs, matches
from ssformer_repro.polyps.settings import DatasetSettings
from ssformer_repro.settings_types import CHOICE_KEYS, Settings

T = TypeVar("T", bound=BaseModel)


class ConfigurationError(UserError, click.ClickException):
    """The parameters cannot run; the message lists every problem found.

    A click exception: `kedro run` prints its message and exits with status 1, no traceback.
    """

    def __init__(self, problems: Sequence[str], where: str = "the parameters") -> None:
        self.problems = list(problems)
        super().__init__(
            f"{len(self.problems)} problem(s) in {where}; nothing was run:\n- "
            + "\n- ".join(self.problems)
        )


class CheckedConfiguration(NamedTuple):
    """What the start-of-run check found: every problem and, when there is none, the typed
    parameters and each run's configuration by run name (what the nodes receive)."""

    problems: list[str]
    parameters: Parameters | None
    runs: dict[str, RunConfig]


def check_parameters(
    parameters: dict[str, Any], datasets: Iterable[str], runs: Iterable[GridRun]
) -> list[str]:
    """Every problem of `parameters` for the given datasets and grid runs."""
    return check_configuration(parameters, datasets, runs).problems


def check_configuration(
    parameters: dict[str, Any], datasets: Iterable[str], runs: Iterable[GridRun]
) -> CheckedConfiguration:
    """`parameters` checked for the given datasets and grid runs, each block validated once."""
    typed, problems = validated(Parameters, parameters)
    if problems:  # the rest needs well-formed blocks
        return CheckedConfiguration(problems, None, {})
    datasets, runs = list(datasets), list(runs)
    problems += grid_problems(parameters, with_runs=bool(runs))
    for name in datasets:
        if name in parameters["datasets"]:  # else grid_problems said so
            problems += dataset_problems(name, typed.datasets[name])
    configs: dict[str, RunConfig] = {}
    by_problem: dict[str, list[str]] = {}  # the same problem in many runs is listed once
    for run in runs:
        config, found = check_run(run, parameters)
        for problem in found:
            by_problem.setdefault(problem, []).append(run.name)
        if config is not None:
            configs[run.name] = config
    problems += [
        f"{names[0]}: {problem}" if len(names) == 1 else f"{problem} (runs {', '.join(names)})"
        for problem, names in by_problem.items()
    ]
    if problems:
        return CheckedConfiguration(problems, None, {})
    return CheckedConfiguration([], typed, configs)


def validated(model: type[T], values: Any, prefix: str = "") -> tuple[T | None, list[str]]:
    """`values` as `model`, or None and its schema errors, one line each: `<parameter path>:
    <what is wrong>`."""
    try:
        return model.model_validate(values), []
    except ValidationError as error:
        return None, [_describe(item, prefix, model) for item in error.errors()]


def schema_problems(model: type[BaseModel], values: Any, prefix: str = "") -> list[str]:
    """The schema errors of `values`, one line each: `<parameter path>: <what is wrong>`."""
    return validated(model, values, prefix)[1]


def typed_parameter(parameters: Parameters, name: str) -> Any:
    """The typed value of Kedro's parameter dataset `name` (`params:datasets.kvasir` ->
    `parameters.datasets["kvasir"]`, a DatasetSettings)."""
    value: Any = parameters
    for key in name.removeprefix("params:").split("."):
        value = value[key] if isinstance(value, dict) else getattr(value, key)
    return value


def _describe(item: dict, prefix: str, model: type[BaseModel]) -> str:
    # Discriminated unions put the chosen tag (e.g. 'warmup_step') in the location; drop it.
    tags = [part for part in item["loc"] if _is_union_tag(part)]
    location = [str(part) for part in item["loc"] if not _is_union_tag(part)]
    path = ".".join([prefix, *location] if prefix else location) or "(top level)"
    if item["type"] == "extra_forbidden":
        what = f"an option of {tags[-1]!r}" if tags else "a setting here"
        parent = _model_at(model, item["loc"][:-1])
        valid = f"; valid: {', '.join(parent.model_fields)}" if parent else ""
        return f"{path}: not {what} (a typo, or an option of another choice){valid}"
    if item["type"] == "missing":
        return f"{path}: required, missing"
    value = item.get("input")
    shown = f" (got {value!r})" if not isinstance(value, dict | list) else ""
    return f"{path}: {item['msg'].removeprefix('Value error, ')}{shown}"


def _model_at(model: type[BaseModel], location: Sequence[Any]) -> type[BaseModel] | None:
    """The schema model at `location` (as pydantic reports it, union tags included), or None."""
    current: Any = model
    for part in location:
        candidates = _models_in(current)
        if _is_union_tag(part):
            current = next(
                (m for m in candidates if _tag_of(m) == part), candidates[0] if candidates else None
            )
            continue
        fields = candidates[0].model_fields if len(candidates) == 1 else {}
        if part in fields:
            current = fields[part].annotation
        elif typing.get_origin(current) is dict:
            current = typing.get_args(current)[1]
        else:
            return None
    models = _models_in(current)
    return models[0] if len(models) == 1 else None


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The schema models an annotation allows (through Optional, unions and Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def _tag_of(model: type[BaseModel]) -> str | None:
    for key in CHOICE_KEYS:
        field = model.model_fields.get(key)
        if field is not None and typing.get_origin(field.annotation) is typing.Literal:
            return typing.get_args(field.annotation)[0]
    return None


def _is_union_tag(part: Any) -> bool:
    return isinstance(part, str) and part in _choice_tags()


@functools.cache
def _choice_tags() -> frozenset[str]:
    """Every value of a choice key (`name`, `strategy`) in the schema, e.g. 'poly', 'kfold'."""
    tags, pending = set(), [Settings]
    while pending:
        model = pending.pop()
        pending += model.__subclasses__()
        for key in CHOICE_KEYS:
            field = model.model_fields.get(key)
            if field is not None and typing.get_origin(field.annotation) is typing.Literal:
                tags.update(typing.get_args(field.annotation))
    return frozenset(tags)


def grid_problems(parameters: dict[str, Any], with_runs: bool = True) -> list[str]:
    """The datasets built must be described; when runs are to run, the grid's datasets must be
    built and each override must name runs of the grid."""
    described = parameters["datasets"]
    built = parameters["data_processing"]["datasets"]
    problems = [
        f"data_processing.datasets: {name!r} is not described under `datasets:` "
        f"(described: {sorted(described)})"
        for name in built
        if name not in described
    ]
    if not with_runs:
        return problems
    reproduce = parameters["reproduce"]
    problems += [
        f"reproduce.datasets: {name!r} is not built by data_processing.datasets {built}; add it there"
        for name in reproduce["datasets"]
        if name not in built
    ]
    every_run = [run.name for run in grid_runs({**reproduce, "only": None}, described)]
    overrides = reproduce.get("overrides") or {}
    problems += [
        f"reproduce.overrides: {key!r} names no run of the grid; its runs: {', '.join(every_run)}"
        for key in overrides
        if not any(matches(name, key) for name in every_run)
    ]
    problems += [
        f"reproduce.overrides.{key}.{block}: a run's override may change "
        f"{', '.join(RUN_BLOCKS)} only"
        for key, blocks in overrides.items()
        for block in blocks
        if block not in RUN_BLOCKS
    ]
    if not problems:
        try:
            grid_runs(reproduce, described)
        except ValueError as error:
            problems.append(str(error))
    return problems


def dataset_problems(name: str, dataset: DatasetSettings) -> list[str]:
    """Files a dataset's configuration names must exist (its root for `source: files`, its id
    lists), and id lists must partition the dataset."""
    from ssformer_repro.polyps.layouts import DOWNLOAD_HINTS, DatasetLayoutError, discover_pairs

    root = dataset.root
    reads_files = dataset.source == "files"
    if reads_files and not Path(root).is_dir():
        hint = DOWNLOAD_HINTS[dataset.layout].format(root=root)
        return [f"datasets.{name}.root: {root} does not exist. {hint}"]
    split = dataset.split
    if split.strategy not in ("id_lists", "kfold"):
        return []
    ids = None
    if reads_files:
        try:
            ids = [pair.id for pair in discover_pairs(dataset.layout, root)]
        except DatasetLayoutError:
            ids = None  # ingestion reports the layout's problems, file by file
    if split.strategy == "kfold":
        return groups_problems(name, split, ids)
    return id_lists_problems(name, split.id_lists.model_dump(), ids)


def groups_problems(name: str, split: Settings, ids: list[str] | None) -> list[str]:
    """A k-fold split's groups file must exist, be an `id,group` CSV and group every image."""
    from ssformer_repro.polyps.splits import SplitError, read_groups

    where = f"datasets.{name}.split"
    if ids is not None and split.folds > len(ids):
        return [f"{where}.folds: {split.folds} folds of {len(ids)} images"]
    if not split.groups:
        return []
    try:
        groups = read_groups(split.groups)
    except SplitError as error:
        return [f"{where}.groups: {error}"]
    missing = [sample_id for sample_id in ids or [] if sample_id not in groups]
    if missing:
        shown = ", ".join(repr(sample_id) for sample_id in missing[:5])
        return [f"{where}.groups: images with no group: {shown} ({len(missing)} in all)"]
    return []


def id_lists_problems(name: str, files: dict[str, str | None], ids: list[str] | None) -> list[str]:
    """Problems of a dataset's id list files: missing files, then how the ids fit the dataset."""
    from ssformer_repro.polyps.splits import SplitError, id_list_problems, read_id_list

    where = f"datasets.{name}.split.id_lists."
    lists, problems = {}, []
    for key, path in files.items():
        if path is None:
            continue
        try:
            lists[key] = read_id_list(path)
        except SplitError as error:
            problems.append(f"{where}{key}: {error}")
    if problems:
        return problems
    located = {f"{key} ({files[key]})": ids_ for key, ids_ in lists.items()}
    return id_list_problems(ids, located, where=where)


def check_run(
    run: GridRun,
    parameters: dict[str, Any],
    devices: Sequence[str] = ("training", "evaluation"),
    weights: bool = True,
) -> tuple[RunConfig | None, list[str]]:
    """A run's configuration (its own settings, overrides merged in) and its problems: the
    schema's, those of the `devices` of the blocks named, and its ImageNet weights file's."""
    from ssformer_repro.models.pretrained import is_weights_path

    config, problems = validated(RunConfig, run_values(run, parameters))
    if problems:
        return None, problems
    for name in devices:
        block = getattr(config, name)
        problem = device_problem(block.device, block.amp)
        if problem:
            problems.append(f"{name}: {problem}")
    weights = (config.model.pretrained or {}).get(run.backbone) if weights else None
    if weights and is_weights_path(weights) and not Path(weights).expanduser().is_file():
        problems.append(
            f"model.pretrained.{run.backbone}: {weights} does not exist. Download "
            "the ImageNet weights (MiT: mit_bX.pth from the NVlabs SegFormer README; PVTv2: "
            "https://github.com/whai362/PVT/releases/tag/v2) to that path, or set it to null "
            "to train from scratch."
        )
    return (None if problems else config), problems


def checked_run(
    run: GridRun,
    parameters: dict[str, Any],
    devices: Sequence[str] = ("training", "evaluation"),
    weights: bool = True,
) -> RunConfig:
    """`run`'s configuration, or a ConfigurationError listing its problems (`check_run`): for
    code that resolves a run after the start-of-run check (predict, export, torchrun ranks)."""
    config, problems = check_run(run, parameters, devices, weights)
    if problems:
        raise ConfigurationError([f"{run.name}: {problem}" for problem in problems])
    return config


def device_problem(device: str, amp: str) -> str | None:
    """Why a block's `device` and `amp` cannot run on this machine, or None."""
    from ssformer_repro.training.device import amp_settings, resolve_device

    try:
        amp_settings(resolve_device(device), amp)
    except (ValueError, RuntimeError) as error:
        return str(error)
    return None


def usage_problems(parameters: dict[str, Any], pipeline_names: Iterable[str]) -> list[str]:
    """What the predict and export pipelines need set before they can start."""

    def run_problem(key: str, name: Any) -> list[str]:
        try:
            GridRun.parse(name)
        except ValueError as error:
            return [f"{key}: {error}"]
        return []

    problems = []
    if "predict" in pipeline_names:
        predict = parameters.get("predict") or {}
        run, checkpoint, folder = (
            predict.get("run"),
            predict.get("checkpoint"),
            predict.get("input"),
        )
        if bool(run) == bool(checkpoint):
            problems.append(
                "predict: set exactly one of predict.run (a run of the grid, e.g. "
                "kvasir.mit_b2.pld.seed42) and predict.checkpoint (a best.pt file)"
            )
        elif run:
            problems += run_problem("predict.run", run)
        elif not Path(checkpoint).is_file():
            problems.append(f"predict.checkpoint: {checkpoint} is not a file; give a best.pt")
        if not folder:
            problems.append("predict.input: not set; give the folder of frames to segment")
        elif not Path(folder).is_dir():
            problems.append(f"predict.input: {folder} is not a folder")
    if "export" in pipeline_names:
        name = (parameters.get("export") or {}).get("run")
        if not name:
            problems.append(
                "export.run: not set; name the run to export, e.g. kvasir.mit_b2.pld.seed42"
            )
        else:
            problems += run_problem("export.run", name)
    return problems


def unread_file_problems(files: dict[Path, str | None], where: str) -> list[str]:
    """Configuration files that the environment (`where`: '--env=demo') reads nothing from,
    each with the kind of configuration its name is (loader.unread_files): a misnamed file,
    or conf/local's catalog or globals under another environment (conf/README.md)."""
    problems = []
    for path, kind in files.items():
        shown = "/".join(path.parts[-3:])  # conf/<env>/<file>
        if kind is None:
            problems.append(
                f"{shown}: read by nothing, its name matches none of Kedro's patterns "
                "(parameters*, catalog*, credentials*, globals.yml); rename it, e.g. "
                "parameters_<topic>.yml"
            )
        else:
            problems.append(
                f"{shown}: not read under {where}: conf/local's catalog and globals (where "
                "data is read and written) apply without --env only, so that another "
                "environment never writes into the study's folders; move the file aside to run "
                f"{where}"
            )
    return problems


def unread_dataset_problems(
    parameters: dict[str, Any], given: dict[str, dict[str, Any]], where: str
) -> list[str]:
    """Dataset settings the user gave (`given`: conf/local's files, --params) for a dataset
    this environment neither builds nor trains on, so that nothing would read them."""
    used = set(parameters["data_processing"]["datasets"]) | set(parameters["reproduce"]["datasets"])
    return [
        f"datasets.{name} ({source}): not read under {where}, whose datasets are "
        f"{', '.join(sorted(used))}; take it out of {source} to run this environment"
        for source, content in given.items()
        for name in (content or {}).get("datasets") or {}
        if name not in used
    ]


def resume_problems(configs: Iterable[RunConfig], folders: dict[str, Path]) -> list[str]:
    """Runs whose `last.pt` holds more epochs than their `training.epochs` asks for, which
    training would refuse (`on_changed_settings: refuse`); `folders` maps run names to their
    run folders."""
    problems = []
    for config in configs:
        run, training = config.run, config.training
        if not Path(folders[run.name]).is_dir():
            continue  # never started (and torch stays unimported for a check of new runs)
        from ssformer_repro.training.checkpoint import (
            LAST_CHECKPOINT,
            past_epochs_message,
            trained_epochs,
        )

        last = Path(folders[run.name]) / LAST_CHECKPOINT
        trained = trained_epochs(last)
        refuse = training.on_changed_settings == "refuse"
        if refuse and trained is not None and trained > training.epochs:
            problems.append(f"{run.name}: {past_epochs_message(last, trained, training.epochs)}")
    return problems


def verdict_problems(runs: Iterable[GridRun]) -> list[str]:
    """The report's verdict compares pairs of heads: a grid with no such pair would train every
    run and then fail at the report, so it is refused before any work."""
    from ssformer_repro.reporting.names import COMPARISONS as VERDICT_COMPARISONS

    heads = {run.head for run in runs}
    if any({first, second} <= heads for first, second in VERDICT_COMPARISONS):
        return []
    pairs = ", ".join(f"{first} vs {second}" for first, second in VERDICT_COMPARISONS)
    return [
        f"reproduce.heads: the report's verdict compares {pairs}; the runs have {sorted(heads)}. "
        "Add a head, or run --pipelines=training, which makes no report"
    ]
