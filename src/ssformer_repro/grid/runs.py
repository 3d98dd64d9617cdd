"""A run of the experiment grid: one home for its fields, name, namespace and folder.

A run is one value of every dimension of the grid: dataset x backbone x head x training seed,
and, for a dataset split into cross-validation folds, the fold it tests on. Its name, e.g.
`kvasir.mit_b2.pld.seed42` or `clinicdb.mit_b2.pld.seed42.fold3`, is the values joined by dots
in field order; the name is also its Kedro namespace, the key that `reproduce.overrides`
entries match, its MLflow child run, and (without the fold) its DVC stage. A run's folder under
each data layer is its name, a fold being a sub-folder of its seed's folder.

A dimension is gained by adding a field here, whose metadata says where its values are listed
(`reproduce.<grid_key>`, or the dataset's settings), and nothing else. `reproduce.only` narrows
the grid, and `reproduce.overrides` entries apply to the runs they match.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from fnmatch import fnmatchcase
from itertools import product
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from ssformer_repro.errors import UserError
from ssformer_repro.settings_types import merge_settings

R = TypeVar("R", bound="GridRun")


def dimension(
    grid_key: str,
    prefix: str = "",
    *,
    per_dataset: bool = False,
    subfolder: bool = False,
    default: Any = dataclasses.MISSING,
) -> Any:
    """A field of GridRun, written `<prefix><value>` in run names.

    Its values are listed under `reproduce.<grid_key>`, or, with `per_dataset`, follow from each
    dataset's settings (`dataset_values`). An optional dimension (with a `default`, None) is left
    out of the names of runs that do not have it; a `subfolder` one is a sub-folder of the rest.
    """
    metadata = {"grid_key": grid_key, "prefix": prefix, "per_dataset": per_dataset}
    return dataclasses.field(default=default, metadata={**metadata, "subfolder": subfolder})


@dataclasses.dataclass(frozen=True)
class GridRun:
    """One run of the grid; build them with `grid_runs` or `GridRun.parse`."""

    dataset: str = dimension("datasets")
    backbone: str = dimension("backbones")
    head: str = dimension("heads")
    seed: int = dimension("seeds", prefix="seed")
    fold: int | None = dimension(
        "folds", prefix="fold", per_dataset=True, subfolder=True, default=None
    )

    SEPARATOR: ClassVar[str] = "."

    @classmethod
    def dimensions(cls) -> tuple[dataclasses.Field, ...]:
        """The fields of a run, in the order they appear in its name."""
        return dataclasses.fields(cls)

    def _parts(self) -> list[tuple[dataclasses.Field, str]]:
        return [
            (field, f"{field.metadata['prefix']}{getattr(self, field.name)}")
            for field in self.dimensions()
            if getattr(self, field.name) is not None
        ]

    @property
    def name(self) -> str:
        """The run's name, e.g. `kvasir.mit_b2.pld.seed42`."""
        return self.SEPARATOR.join(part for _, part in self._parts())

    @property
    def namespace(self) -> str:
        """The Kedro namespace of the run's nodes and datasets (its name)."""
        return self.name

    @property
    def cell(self) -> str:
        """The dataset x backbone x head the run is a replicate of, e.g. `kvasir.mit_b2.pld`."""
        return self.SEPARATOR.join((self.dataset, self.backbone, self.head))

    @property
    def stage_run(self) -> GridRun:
        """The run without its sub-folder dimensions: what one DVC stage trains, every fold."""
        subfolders = [field.name for field in self.dimensions() if field.metadata["subfolder"]]
        return dataclasses.replace(self, **dict.fromkeys(subfolders))

    @property
    def stage(self) -> str:
        """The run's DVC stage name (its folds train together): `train@kvasir-mit_b2-pld-42`."""
        values = self.stage_run.fields().values()
        return "train@" + "-".join(str(value) for value in values if value is not None)

    @property
    def folder(self) -> Path:
        """The run's folder below each data layer, as the catalog writes it."""
        parts = self._parts()
        top = self.SEPARATOR.join(part for field, part in parts if not field.metadata["subfolder"])
        return Path(top, *(part for field, part in parts if field.metadata["subfolder"]))

    def fields(self) -> dict[str, Any]:
        """The run's dimensions as a dict, e.g. for MLflow parameters and table columns."""
        return {field.name: getattr(self, field.name) for field in self.dimensions()}

    @classmethod
    def parse(cls: type[R], name: str) -> R:
        """The run named `name`, e.g. `GridRun.parse("kvasir.mit_b2.pld.seed42")`."""
        parts = name.split(cls.SEPARATOR)
        expected = ".".join(
            f"[{f.metadata['prefix']}<{f.name}>]"
            if f.default is not dataclasses.MISSING
            else f"{f.metadata['prefix']}<{f.name}>"
            for f in cls.dimensions()
        )
        values = {}
        for field in cls.dimensions():
            prefix, optional = field.metadata["prefix"], field.default is not dataclasses.MISSING
            if not parts or (optional and not (parts[0].startswith(prefix) and parts[0] != prefix)):
                if optional:
                    continue
                raise ValueError(f"{name!r} is not a grid run name: expected {expected}.")
            part = parts.pop(0)
            if not part.startswith(prefix) or part == prefix:
                raise ValueError(
                    f"{name!r} is not a grid run name: its {field.name} must be written "
                    f"{prefix}<value>; expected {expected}."
                )
            text = part.removeprefix(prefix)
            is_int = "int" in str(field.type)
            values[field.name] = int(text) if is_int and text.lstrip("-").isdigit() else text
        if parts:
            raise ValueError(f"{name!r} is not a grid run name: expected {expected}.")
        return cls(**values)


class GridError(UserError, ValueError):
    """The grid's settings select no run."""


def dataset_values(grid_key: str, dataset: Mapping[str, Any] | None) -> list[Any]:
    """The values of a per-dataset dimension: a k-fold dataset's folds 0..K-1, else one None."""
    from ssformer_repro.polyps.splits import SPLIT_OPTIONS

    split = (dataset or {}).get("split") or {}
    if grid_key == "folds" and split.get("strategy") == "kfold":
        return list(range(split.get("folds", SPLIT_OPTIONS["kfold"].model_fields["folds"].default)))
    return [None]


def grid_runs(
    reproduce: Mapping[str, Any],
    datasets: Mapping[str, Any] | None = None,
    run_type: type[R] | None = None,
) -> list[R]:
    """Every run of the grid `reproduce` (with the `datasets` it names), in a stable order.

    `reproduce.only`, when set, keeps the runs that match any of its patterns (see `matches`).
    """
    run_type = run_type or GridRun
    fields = run_type.dimensions()
    listed = [field for field in fields if not field.metadata["per_dataset"]]
    missing = [f.metadata["grid_key"] for f in listed if not reproduce.get(f.metadata["grid_key"])]
    if missing:
        raise GridError(f"reproduce.{missing[0]} is empty or missing: the grid needs its values.")
    runs = []
    for combination in product(*(reproduce[field.metadata["grid_key"]] for field in listed)):
        values = dict(zip((field.name for field in listed), combination, strict=True))
        per_dataset = [
            dataset_values(field.metadata["grid_key"], (datasets or {}).get(values["dataset"]))
            for field in fields
            if field.metadata["per_dataset"]
        ]
        for extra in product(*per_dataset):
            names = [field.name for field in fields if field.metadata["per_dataset"]]
            runs.append(run_type(**values, **dict(zip(names, extra, strict=True))))
    only = reproduce.get("only")
    if not only:
        return runs
    patterns = only.split() if isinstance(only, str) else list(only)
    selected = [run for run in runs if any(matches(run.name, pattern) for pattern in patterns)]
    if not selected:
        raise GridError(
            f"reproduce.only {patterns} matches no run of the grid; its runs: "
            f"{', '.join(run.name for run in runs)}"
        )
    return selected


def parameter_grid(parameters: Mapping[str, Any]) -> list[GridRun]:
    """The runs of the grid the parameters define (`reproduce` and the `datasets` it names)."""
    return grid_runs(parameters["reproduce"], parameters.get("datasets"))


def matches(name: str, pattern: str) -> bool:
    """Whether run `name` is selected by `pattern`: the name itself, a prefix of it ending at a
    dot (`kvasir.mit_b2` selects every head and seed on that backbone), or a glob matching the
    name or such a prefix (`*.sed` selects every seed of every SeD run)."""
    return fnmatchcase(name, pattern) or fnmatchcase(name, f"{pattern}{GridRun.SEPARATOR}*")


def run_settings(
    run: GridRun, settings: Mapping[str, Any], reproduce: Mapping[str, Any]
) -> dict[str, Any]:
    """Shared `settings` blocks with this run's `reproduce.overrides` entries merged in.

    An entry applies to the runs it `matches` (a run name, a prefix such as `kvasir.mit_b5`, or
    a glob); the more specific entries are merged last. A changed `name` or `strategy` replaces
    its block (settings_types.merge_settings). `training.seed` is the run's seed.
    """
    overrides = reproduce.get("overrides") or {}
    applying = [key for key in overrides if matches(run.name, key)]
    merged = copy.deepcopy(dict(settings))
    for key in sorted(applying, key=lambda key: (key.count(GridRun.SEPARATOR), key)):
        merged = merge_settings(merged, overrides[key])
    if "training" in merged:
        merged["training"] = {**merged["training"], "seed": run.seed}  # the run's own seed
    return merged
