"""A run of the experiment grid: one home for its fields, name, namespace and folder.

A run is one value of every dimension of the grid (dataset x backbone x head). Its name, e.g.
`kvasir.mit_b2.pld`, is the values joined by dots in field order; the name is also its Kedro
namespace, its folder under each data layer, the key of its `reproduce.overrides` entry, its
DVC stage and its MLflow child run. A dimension is gained by adding a field here (with the
`reproduce` key that lists its values in its metadata) and nothing else. `reproduce.only`
narrows the grid, and `reproduce.overrides` entries apply to the runs they match.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from fnmatch import fnmatchcase
from itertools import product
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from ssformer_repro.config.schema import merge_settings

R = TypeVar("R", bound="GridRun")


def dimension(grid_key: str, prefix: str = "") -> Any:
    """A field of GridRun: listed under `reproduce.<grid_key>`, written `<prefix><value>`."""
    return dataclasses.field(metadata={"grid_key": grid_key, "prefix": prefix})


@dataclasses.dataclass(frozen=True)
class GridRun:
    """One run of the grid; build them with `grid_runs` or `GridRun.parse`."""

    dataset: str = dimension("datasets")
    backbone: str = dimension("backbones")
    head: str = dimension("heads")

    SEPARATOR: ClassVar[str] = "."

    @classmethod
    def dimensions(cls) -> tuple[dataclasses.Field, ...]:
        """The fields of a run, in the order they appear in its name."""
        return dataclasses.fields(cls)

    @property
    def name(self) -> str:
        """The run's name, e.g. `kvasir.mit_b2.pld`."""
        return self.SEPARATOR.join(
            f"{field.metadata['prefix']}{getattr(self, field.name)}" for field in self.dimensions()
        )

    @property
    def namespace(self) -> str:
        """The Kedro namespace of the run's nodes and datasets (its name)."""
        return self.name

    @property
    def folder(self) -> Path:
        """The run's folder below each data layer (its name), as the catalog writes it."""
        return Path(self.name)

    def fields(self) -> dict[str, Any]:
        """The run's dimensions as a dict, e.g. for MLflow parameters and table columns."""
        return {field.name: getattr(self, field.name) for field in self.dimensions()}

    @classmethod
    def parse(cls: type[R], name: str) -> R:
        """The run named `name`, e.g. `GridRun.parse("kvasir.mit_b2.pld")`."""
        parts = name.split(cls.SEPARATOR)
        fields = cls.dimensions()
        if len(parts) != len(fields):
            raise ValueError(
                f"{name!r} is not a grid run name: expected {len(fields)} parts "
                f"<{'>.<'.join(field.name for field in fields)}>, got {len(parts)}."
            )
        values = {}
        for field, part in zip(fields, parts, strict=True):
            prefix = field.metadata["prefix"]
            if not part.startswith(prefix) or part == prefix:
                raise ValueError(f"{name!r}: its {field.name} must be written {prefix}<value>.")
            text = part.removeprefix(prefix)
            values[field.name] = int(text) if field.type in (int, "int") else text
        return cls(**values)


def grid_runs(reproduce: Mapping[str, Any], run_type: type[R] | None = None) -> list[R]:
    """Every run of the grid `reproduce`, in a stable order (dimension by dimension).

    `reproduce.only`, when set, keeps the runs that match any of its patterns (see `matches`).
    """
    run_type = run_type or GridRun
    fields = run_type.dimensions()
    keys = [field.metadata["grid_key"] for field in fields]
    missing = [key for key in keys if not reproduce.get(key)]
    if missing:
        raise ValueError(f"reproduce.{missing[0]} is empty or missing: the grid needs its values.")
    names = [field.name for field in fields]
    runs = [
        run_type(**dict(zip(names, combination, strict=True)))
        for combination in product(*(reproduce[key] for key in keys))
    ]
    only = reproduce.get("only")
    if not only:
        return runs
    patterns = only.split() if isinstance(only, str) else list(only)
    selected = [run for run in runs if any(matches(run.name, pattern) for pattern in patterns)]
    if not selected:
        raise ValueError(
            f"reproduce.only {patterns} matches no run of the grid; its runs: "
            f"{', '.join(run.name for run in runs)}"
        )
    return selected


def matches(name: str, pattern: str) -> bool:
    """Whether run `name` is selected by `pattern`: a glob (`*.sed`), the name itself, or a
    prefix of it ending at a dot (`kvasir.mit_b2` selects every head on that backbone)."""
    return fnmatchcase(name, pattern) or name.startswith(f"{pattern}{GridRun.SEPARATOR}")


def run_settings(
    run: GridRun, settings: Mapping[str, Any], reproduce: Mapping[str, Any]
) -> dict[str, Any]:
    """Shared `settings` blocks with this run's `reproduce.overrides` entries merged in.

    An entry applies to the runs it `matches` (a run name, a prefix such as `kvasir.mit_b5`, or
    a glob); the more specific entries are merged last. A changed `name` or `strategy` replaces
    its block (config.schema.merge_settings).
    """
    overrides = reproduce.get("overrides") or {}
    applying = [key for key in overrides if matches(run.name, key)]
    merged = copy.deepcopy(dict(settings))
    for key in sorted(applying, key=lambda key: (key.count(GridRun.SEPARATOR), key)):
        merged = merge_settings(merged, overrides[key])
    return merged
