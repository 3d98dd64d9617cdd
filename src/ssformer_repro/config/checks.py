"""Check the configuration of a run before any work starts: one message per problem, in seconds.

A study of many GPU-hours should not fail after hours on a typo. ``check_parameters`` looks at
the datasets and grid runs a ``kedro run`` is about to execute and lists every problem it finds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ssformer_repro.grid.runs import GridRun, run_settings


class ConfigurationError(ValueError):
    """The parameters cannot run; the message lists every problem found."""


def check_dataset(name: str, dataset: dict[str, Any] | None) -> list[str]:
    """Problems of ``datasets.<name>``: source, layout, root and split strategy."""
    from ssformer_repro.pipelines.data_processing.pipeline import RAW_SOURCES
    from ssformer_repro.polyps.layouts import DOWNLOAD_HINTS, LAYOUTS
    from ssformer_repro.polyps.splits import SPLIT_STRATEGIES

    if dataset is None:
        return [f"datasets.{name}: not described under `datasets:`"]
    problems = []
    source, layout = dataset.get("source"), dataset.get("layout")
    if source not in RAW_SOURCES:
        problems.append(f"datasets.{name}.source is {source!r}; valid: {sorted(RAW_SOURCES)}")
    if layout not in LAYOUTS:
        problems.append(f"datasets.{name}.layout is {layout!r}; valid: {sorted(LAYOUTS)}")
    strategy = (dataset.get("split") or {}).get("strategy")
    if strategy not in SPLIT_STRATEGIES:
        problems.append(
            f"datasets.{name}.split.strategy is {strategy!r}; valid: {sorted(SPLIT_STRATEGIES)}"
        )
    root = dataset.get("root")
    if source == "files" and layout in LAYOUTS and not Path(str(root)).is_dir():
        problems.append(
            f"datasets.{name}.root {root} does not exist. "
            + DOWNLOAD_HINTS[layout].format(root=root)
        )
    return problems


def check_image_sizes(parameters: dict[str, Any]) -> list[str]:
    """Training and cache sizes must suit the models (strides up to 32)."""
    problems = []
    size = (parameters.get("augmentation") or {}).get("image_size")
    if not isinstance(size, int) or size <= 0 or size % 32:
        problems.append(
            f"augmentation.image_size is {size!r}; it must be a positive multiple of 32 "
            "(the backbones downsample by 32), e.g. 352"
        )
    cache_size = (parameters.get("data_processing") or {}).get("cache_size")
    if not isinstance(cache_size, int) or cache_size <= 0:
        problems.append(f"data_processing.cache_size is {cache_size!r}; it must be a positive int")
    return problems


def check_mask_policy(parameters: dict[str, Any]) -> list[str]:
    """What to do with masks of more than two grey values must be a known policy."""
    from ssformer_repro.polyps.validation import NON_BINARY_MASK_POLICIES

    policy = (parameters.get("data_processing") or {}).get("non_binary_masks", "binarise")
    if policy in NON_BINARY_MASK_POLICIES:
        return []
    return [
        f"data_processing.non_binary_masks is {policy!r}; valid: {list(NON_BINARY_MASK_POLICIES)}"
    ]


def check_run(run: GridRun, parameters: dict[str, Any]) -> list[str]:
    """Problems of one grid run: its backbone and head names, training settings and weights."""
    from ssformer_repro.models import available_backbones, available_heads
    from ssformer_repro.models.pretrained import is_weights_path
    from ssformer_repro.training.device import AMP_MODES
    from ssformer_repro.training.settings import TrainingConfig

    run_name, backbone, head = run.name, run.backbone, run.head
    problems = []
    if backbone not in available_backbones():
        problems.append(
            f"{run_name}: unknown backbone {backbone!r}; valid: {available_backbones()}"
        )
    if head not in available_heads():
        problems.append(f"{run_name}: unknown head {head!r}; valid: {available_heads()}")
    shared = {key: parameters.get(key) or {} for key in ("training", "model", "evaluation")}
    settings = run_settings(run, shared, parameters.get("reproduce") or {})
    try:
        TrainingConfig.from_dict(settings["training"])
    except (TypeError, ValueError) as error:
        problems.append(f"{run_name}: training settings: {error}")
    evaluation_amp = settings["evaluation"].get("amp", "off")
    if evaluation_amp not in AMP_MODES:
        problems.append(
            f"{run_name}: evaluation.amp is {evaluation_amp!r}; valid: {list(AMP_MODES)}"
        )
    weights = (settings["model"].get("pretrained") or {}).get(backbone)
    if weights and is_weights_path(weights) and not Path(weights).expanduser().is_file():
        problems.append(
            f"{run_name}: model.pretrained.{backbone} = {weights} does not exist. Download the "
            "ImageNet weights (MiT: mit_bX.pth from the NVlabs SegFormer README; PVTv2: "
            "https://github.com/whai362/PVT/releases/tag/v2) to that path, or set it to null "
            "to train from scratch."
        )
    return problems


def check_parameters(
    parameters: dict[str, Any], datasets: list[str], runs: list[GridRun]
) -> list[str]:
    """Every problem of the parameters for the given datasets and grid runs."""
    known = parameters.get("datasets") or {}
    problems = []
    for name in datasets:
        problems += check_dataset(name, known.get(name))
    if datasets:
        problems += check_mask_policy(parameters)
    if datasets or runs:
        problems += check_image_sizes(parameters)
    for run in runs:
        problems += check_run(run, parameters)
    return problems
