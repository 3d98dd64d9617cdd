"""The base of every parameter block, the value types blocks share, and how blocks merge.

Each package declares the blocks of the code that uses them (`<package>/settings.py`: training,
models, polyps, evaluation, reporting, tracking, inference); config/schema.py composes them
into the whole configuration. A module whose options are its keyword arguments (a head, a loss,
a schedule) declares them once, in its signature: `options_model` derives their block from it.
"""

from __future__ import annotations

import copy
import inspect
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, create_model

# The keys that name the chosen option set of a "name + options" block.
CHOICE_KEYS = ("name", "strategy")
AUTO = "auto"
AmpMode = Literal["auto", "bf16", "fp16", "off"]
BoolOrAuto = bool | Literal["auto"]
Fraction = Annotated[float, Field(ge=0, lt=1)]
Probability = Annotated[float, Field(ge=0, le=1)]
T = TypeVar("T")
Pair = Annotated[list[T], Field(min_length=2, max_length=2)]  # YAML has lists, not tuples
Triple = Annotated[list[T], Field(min_length=3, max_length=3)]


class Settings(BaseModel):
    """A parameter block: unknown keys are errors (typos), and values are taken strictly (an
    integer is a valid float, but a string is not a number and `true` is not an integer)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def options_model(
    build: Callable[..., Any],
    model_name: str,
    skip: Iterable[str] = (),
    choice: tuple[str, str] | None = None,
    optional: Iterable[str] = (),
) -> type[Settings]:
    """The settings block of `build`'s keyword arguments: their annotations and defaults.

    `skip`: arguments the caller supplies (e.g. a head's input channels); `choice`: a
    ("name", "poly") pair added as the block's Literal choice key, for discriminated unions;
    `optional`: required arguments that the block may leave unset (None), for the caller to
    fill in (e.g. a head's width, which its registry entry defaults).
    """
    function = build.__init__ if inspect.isclass(build) else build
    hints = typing.get_type_hints(function, include_extras=True)
    skip, optional = set(skip) | {"self"}, set(optional)
    fields: dict[str, Any] = {}
    if choice is not None:
        key, value = choice
        fields[key] = (Literal[value], value)
    for name, parameter in inspect.signature(function).parameters.items():
        if name in skip or parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        if name in fields:
            raise TypeError(f"{build.__qualname__}: its argument {name!r} is the choice key")
        if name in optional:
            fields[name] = (hints[name] | None, None)
        elif parameter.default is parameter.empty:
            fields[name] = (hints[name], ...)
        else:  # a default that breaks its own annotation fails here, at import
            fields[name] = (hints[name], Field(parameter.default, validate_default=True))
    model = create_model(model_name, __base__=Settings, **fields)
    model.__doc__ = f"Options of {build.__module__}.{build.__qualname__} (its keyword arguments)."
    return model


def options_of(block: Settings, *exclude: str) -> dict[str, Any]:
    """A block's options as keyword arguments: unset (None) ones and `exclude` left out."""
    return block.model_dump(exclude={*exclude}, exclude_none=True)


def merge_settings(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """`override` merged into `base`, nested; a block whose choice key (`name`, `strategy`)
    changes is replaced, not merged, so the replaced choice's options do not linger."""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        current = merged.get(key)
        if isinstance(value, Mapping) and isinstance(current, Mapping):
            switched = any(
                choice in value and choice in current and value[choice] != current[choice]
                for choice in CHOICE_KEYS
            )
            merged[key] = copy.deepcopy(dict(value)) if switched else merge_settings(current, value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged
