"""Write, per dataset and per run, what its DVC stage reads that DVC cannot see by itself.

DVC re-runs a stage when one of its ``deps`` or ``params`` changes, but it cannot merge Kedro's
environments (``conf/base`` under ``conf/demo``), pick one run's entry out of
``reproduce.overrides`` (usually absent, and DVC refuses absent ``params``), nor look up a
dataset's raw folder or a backbone's weights file by name. The ``stage_inputs`` stage of
``dvc.yaml`` and ``demo/dvc.yaml`` runs this module; it writes one small JSON file per dataset
and per grid run with the settings Kedro resolves for it and fingerprints of the raw files and
pretrained weights it reads. Each stage depends on its own file, so changing one run's override
re-runs that run alone; the code a run's result depends on is a `deps` entry of its stage.

    python -m ssformer_repro.grid.dvc_inputs --env demo --output data/demo/02_intermediate/stage_inputs
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ssformer_repro.config.loader import load_parameters, tracked_parameters
from ssformer_repro.errors import UserError
from ssformer_repro.grid.runs import GridRun, parameter_grid, run_settings
from ssformer_repro.storage.digests import path_digest

# Only these dataset sources read raw files; a synthetic dataset is written by its own stage.
RAW_FILE_SOURCES = ("files",)


def dataset_inputs(parameters: dict[str, Any], name: str) -> dict[str, Any]:
    """What dataset ``name``'s data_processing stage reads: its entry and its raw files."""
    if name not in parameters["datasets"]:
        raise ValueError(f"datasets.{name} is not described under `datasets:` in the parameters")
    from ssformer_repro.polyps.settings import DatasetSettings

    dataset = parameters["datasets"][name]
    source = dataset.get("source", DatasetSettings.model_fields["source"].default)
    reads_raw_files = source in RAW_FILE_SOURCES
    return {
        "dataset": dataset,
        "raw_files": path_digest(dataset["root"]) if reads_raw_files else None,
    }


def run_stage_inputs(parameters: dict[str, Any], run: GridRun) -> dict:
    """What one grid run's stage reads: its resolved training, augmentation and evaluation
    settings, the model settings of its backbone and head, and its weights file."""
    from ssformer_repro.models.segmenter import model_choices
    from ssformer_repro.models.settings import ModelSettings

    shared = {key: parameters[key] for key in ("training", "model", "augmentation", "evaluation")}
    settings = run_settings(run, shared, parameters["reproduce"])
    model = model_choices(run.backbone, run.head, ModelSettings.model_validate(settings["model"]))
    return {
        "run": run.name,
        **settings,
        "model": model,
        "pretrained_weights": path_digest(model["pretrained"]),
    }


def write_stage_inputs(parameters: dict[str, Any], output: Path) -> list[Path]:
    """``output/datasets/<dataset>.json`` and ``output/runs/<run>.json``, one per DVC stage."""
    processed = parameters["data_processing"]["datasets"]
    runs = parameter_grid(parameters)
    unprocessed = sorted({run.dataset for run in runs} - set(processed))
    if unprocessed:
        raise ValueError(
            f"reproduce.datasets names {unprocessed}, which data_processing.datasets does not "
            "build; add them there"
        )
    datasets = {name: dataset_inputs(parameters, name) for name in processed}
    contents = {Path("datasets", f"{name}.json"): inputs for name, inputs in datasets.items()}
    stages: dict[GridRun, list[GridRun]] = {}
    for run in runs:  # a stage trains every fold of its run
        stages.setdefault(run.stage_run, []).append(run)
    for stage_run, members in stages.items():
        content = run_stage_inputs(parameters, stage_run)
        if members != [stage_run]:  # an override may name one fold: each fold's own inputs
            content = {
                "run": stage_run.name,
                "folds": [run_stage_inputs(parameters, m) for m in members],
            }
        contents[Path("runs", f"{stage_run.name}.json")] = content

    written = []
    for relative, content in contents.items():
        path = output / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        written.append(path)
    return written


class UntrackedGridError(UserError, ValueError):
    """conf/local or --params change the grid, which a DVC pipeline's stages cannot follow."""


def grid_problem(
    parameters: dict[str, Any], tracked: dict[str, Any], env: str | None
) -> str | None:
    """Why the grid of `parameters` is not the one of the `tracked` files, which the DVC
    pipeline's `vars` read to make its stages; None when they agree.

    DVC reads the grid and the dataset list from the tracked parameter files alone, so a grid
    changed in conf/local (which Kedro layers over every environment) or by --params would
    train runs that no stage declares, or leave the stages' runs untrained.
    """
    built, built_tracked = (p["data_processing"]["datasets"] for p in (parameters, tracked))
    runs, runs_tracked = ({run.name for run in parameter_grid(p)} for p in (parameters, tracked))
    if built == built_tracked and runs == runs_tracked:
        return None
    differences = [
        f"{label} {', '.join(sorted(names))}"
        for label, names in (
            ("adds the runs", runs - runs_tracked),
            ("drops the runs", runs_tracked - runs),
            ("adds the datasets", set(built) - set(built_tracked)),
            ("drops the datasets", set(built_tracked) - set(built)),
        )
        if names
    ]
    files = f"conf/base and conf/{env}" if env else "conf/base"
    return (
        f"conf/local or --params change the grid of this DVC pipeline: it {'; '.join(differences)}."
        f" A DVC pipeline's stages are the grid of its tracked files ({files}), which dvc.lock "
        "versions with the results: change the grid there (reproduce.* and "
        "data_processing.datasets), or run the other grid with `kedro run`."
    )


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m ssformer_repro.grid.dvc_inputs [--env ENV] --output FOLDER``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", help="Kedro environment (default: Kedro's default run env)")
    parser.add_argument("--output", type=Path, required=True, help="folder to write into")
    parser.add_argument("--project", type=Path, default=Path.cwd(), help="Kedro project root")
    args = parser.parse_args(argv)
    try:
        parameters = load_parameters(args.project.resolve(), args.env)
        problem = grid_problem(
            parameters, tracked_parameters(args.project.resolve(), args.env), args.env
        )
        if problem:
            raise UntrackedGridError(problem)
        write_stage_inputs(parameters, args.output)
    except UserError as error:  # what the user can fix: its message alone, as `kedro run`
        parser.exit(1, f"Error: {error}\n")


if __name__ == "__main__":
    main()
