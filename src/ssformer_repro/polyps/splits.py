"""Assign every sample to train / val / test, reproducibly, and write the split manifest.

A split strategy's options are its keyword arguments after the pairs: `SPLIT_OPTIONS` derives
the `datasets.<name>.split` block of each from its signature (scikit-learn is imported where
it is used, so that reading the schema does not import it).
"""

from __future__ import annotations

import inspect
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Annotated

import numpy as np
import pandas as pd
from pydantic import Field

from ssformer_repro.errors import UserError
from ssformer_repro.polyps.layouts import IMAGE_SUFFIXES, SamplePair
from ssformer_repro.settings_types import Fraction, Settings, options_model

MANIFEST_COLUMNS = ["id", "image_path", "mask_path", "split", "subset"]
# Ids shown per problem before a count of the rest.
SHOWN_IDS = 5

# What a strategy gives each id: its split ("train", "val", "test"), or a row of manifest
# columns ({"split": ..., "subset": ...}) where it says more than the split.
Assignment = dict[str, str | dict[str, str]]


class SplitError(UserError, ValueError):
    """A split cannot be built from the given ids, lists or settings."""


def random_split(
    ids: Iterable[str], seed: int, val_fraction: float = 0.1, test_fraction: float = 0.1
) -> dict[str, str]:
    """FCBFormer-style split: sort ids, carve out test then val with sklearn's train_test_split.

    Counts are rounded integers of the whole dataset: 1000 -> 800/100/100, 612 -> 490/61/61.
    """
    sorted_ids = _sorted_unique(ids)
    _check_fractions(val_fraction=val_fraction, test_fraction=test_fraction)
    n_test = round(len(sorted_ids) * test_fraction)
    n_val = round(len(sorted_ids) * val_fraction)
    rest, test = _carve(sorted_ids, n_test, seed)
    train, val = _carve(rest, n_val, seed)
    return _assignment(train=train, val=val, test=test)


def split_from_id_lists(
    ids: Iterable[str],
    id_lists: Mapping[str, Sequence[str]],
    seed: int = 42,
    val_fraction: float = 0.1,
) -> Assignment:
    """Fixed split from published id lists (e.g. Kvasir-SEG train.txt / val.txt).

    Every dataset id must be in exactly one list and every listed id in the dataset. Without a
    `val` list, validation is carved out of `train` (`val_fraction`, `seed`), so that model
    selection never touches the test list. Each id's `subset` is the list it came from.
    """
    dataset_ids = _sorted_unique(ids)
    problems = id_list_problems(dataset_ids, id_lists)
    if problems:
        raise SplitError(
            f"The id lists do not partition the dataset ({len(problems)} problems):\n  "
            + "\n  ".join(problems)
        )
    listed = {sample_id: name for name, names in id_lists.items() for sample_id in names}
    splits = dict(listed)
    if "val" not in id_lists:
        _check_fractions(val_fraction=val_fraction)
        train = sorted(sample_id for sample_id, name in listed.items() if name == "train")
        _, val = _carve(train, round(len(train) * val_fraction), seed)
        splits.update(dict.fromkeys(val, "val"))
    return {
        sample_id: {"split": splits[sample_id], "subset": listed[sample_id]}
        for sample_id in dataset_ids
    }


def id_list_problems(
    dataset_ids: Iterable[str] | None, id_lists: Mapping[str, Sequence[str]], where: str = ""
) -> list[str]:
    """What keeps id lists from partitioning a dataset: ids listed twice, in two lists, not in
    the dataset (or paths), and dataset ids in no list. `dataset_ids` None skips the last two."""
    problems = []
    for name, names in id_lists.items():
        origin = f"{where}{name}" if where else f"list {name!r}"
        counts = Counter(names)
        problems += _listed(f"{origin}: listed twice", [i for i, n in counts.items() if n > 1])
        problems += _listed(
            f"{origin}: paths that leave the dataset folder, not sample ids",
            [sample_id for sample_id in counts if _is_path_like(sample_id)],
        )
    seen: dict[str, str] = {}
    in_two = []
    for name, names in id_lists.items():
        for sample_id in dict.fromkeys(names):
            if sample_id in seen and seen[sample_id] != name:
                in_two.append(f"{sample_id} ({seen[sample_id]}, {name})")
            seen.setdefault(sample_id, name)
    problems += _listed("ids in two lists", in_two)
    if dataset_ids is not None:
        known = set(dataset_ids)
        for name, names in id_lists.items():
            origin = f"{where}{name}" if where else f"list {name!r}"
            unknown = [i for i in dict.fromkeys(names) if i not in known and not _is_path_like(i)]
            problems += _listed(f"{origin}: ids not in the dataset", unknown)
        problems += _listed("dataset ids in no list", sorted(known - seen.keys()))
    return problems


def _listed(what: str, ids: Sequence[str]) -> list[str]:
    """One problem line naming up to SHOWN_IDS ids and counting the rest; none without ids."""
    if not ids:
        return []
    shown = ", ".join(repr(sample_id) for sample_id in ids[:SHOWN_IDS])
    more = f" and {len(ids) - SHOWN_IDS} more" if len(ids) > SHOWN_IDS else ""
    return [f"{what}: {shown}{more} ({len(ids)} in all)"]


def read_id_list(path: str | Path) -> list[str]:
    """Read one id per line, skipping blank lines and `#` comments and dropping image
    extensions ('a.jpg' -> 'a')."""
    path = Path(path)
    if not path.is_file():
        raise SplitError(
            f"{path}: id list file not found. Check the path (relative to the project root)."
        )
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    return [_strip_image_suffix(line) for line in lines if line and not line.startswith("#")]


def read_id_lists(id_lists: Mapping[str, str | None], root: Path | None = None) -> dict:
    """The ids of each list file (`None` entries skipped), paths relative to `root` (the
    working directory, which is the project root under `kedro run`)."""
    root = Path.cwd() if root is None else root
    return {
        name: read_id_list(path if Path(path).is_absolute() else root / path)
        for name, path in id_lists.items()
        if path is not None
    }


def split_by_subset(
    pairs: Sequence[SamplePair], seed: int = 42, val_fraction: Fraction = 0.1
) -> dict[str, str]:
    """PraNet protocol: the "train" subset is train (minus a random val part); every test set is test."""
    _check_fractions(val_fraction=val_fraction)
    train_ids = _sorted_unique(pair.id for pair in pairs if pair.subset == "train")
    if not train_ids:
        raise SplitError("No pair has subset 'train'; the 'pranet' split needs the pranet layout.")
    train, val = _carve(train_ids, round(len(train_ids) * val_fraction), seed)
    test = [pair.id for pair in pairs if pair.subset != "train"]
    return _assignment(train=train, val=val, test=test)


CROSS_VALIDATION = "cv"  # the `split` of every image of a k-fold dataset: see `split_for_fold`


def kfold_split(
    ids: Iterable[str],
    folds: int,
    seed: int,
    val_fraction: float = 0.1,
    groups: Mapping[str, str] | None = None,
) -> Assignment:
    """K folds of the whole dataset: sorted ids, shuffled with `seed` (scikit-learn's KFold, or
    GroupKFold so that each group of `groups` stays in one fold; fold sizes differ by at most
    one image, or by at most the largest group).

    Every image gets `fold`, the fold whose run tests on it, and `val_fold`, the fold whose run
    validates on it (-1 for none): fold k's validation part is `val_fraction` of the other folds'
    images (whole groups), each image validating at most one fold. Fold k's run trains on the
    rest (`split_for_fold`).
    """
    from sklearn.model_selection import GroupKFold, KFold

    ids = _sorted_unique(ids)
    _check_fractions(val_fraction=val_fraction)
    if not 2 <= folds <= len(ids):
        raise SplitError(f"Cannot make {folds} folds of {len(ids)} images; use 2..{len(ids)}.")
    if groups is not None:
        ungrouped = [sample_id for sample_id in ids if sample_id not in groups]
        if ungrouped:
            raise SplitError(_listed("images with no group in the groups file", ungrouped)[0])
        units = [groups[sample_id] for sample_id in ids]
        if len(set(units)) < folds:
            raise SplitError(f"Cannot make {folds} folds of {len(set(units))} groups.")
        # GroupKFold puts the largest groups first, each into the smallest fold so far, which
        # keeps fold sizes within one group of each other; seeded relabelling decides ties.
        order = np.random.default_rng(seed).permutation(len(set(units)))
        relabel = dict(zip(sorted(set(units)), order, strict=True))
        units = [relabel[unit] for unit in units]
        splitter = GroupKFold(n_splits=folds)
    else:
        units = list(ids)
        splitter = KFold(n_splits=folds, shuffle=True, random_state=seed)
    fold_of = {}
    for fold, (_, test) in enumerate(splitter.split(ids, groups=units if groups else None)):
        fold_of.update({ids[index]: fold for index in test})
    val_fold = _validation_folds(ids, units, fold_of, folds, val_fraction, seed)
    return {
        sample_id: {
            "split": CROSS_VALIDATION,
            "fold": fold_of[sample_id],
            "val_fold": val_fold[sample_id],
        }
        for sample_id in ids
    }


def _validation_folds(
    ids: list[str], units: list[str], fold_of: dict, folds: int, val_fraction: float, seed: int
) -> dict[str, int]:
    """For each fold, whole units (groups or images) of the other folds to validate on."""
    rng = np.random.default_rng(seed)
    members: dict[str, list[str]] = {}
    for sample_id, unit in zip(ids, units, strict=True):
        members.setdefault(unit, []).append(sample_id)
    val_fold = dict.fromkeys(ids, -1)
    for fold in range(folds):
        candidates = [u for u in dict.fromkeys(units) if fold_of[members[u][0]] != fold]
        wanted = round(val_fraction * sum(len(members[u]) for u in candidates))
        taken = 0
        for index in rng.permutation(len(candidates)):
            if taken >= wanted:
                break
            unit = candidates[index]
            if val_fold[members[unit][0]] == -1:
                val_fold.update(dict.fromkeys(members[unit], fold))
                taken += len(members[unit])
        if taken < wanted:
            raise SplitError(
                f"val_fraction {val_fraction} is too large for {folds} folds: each image "
                f"validates at most one fold, so use at most {1 / (folds - 1):.2f}."
            )
    return val_fold


def split_for_fold(manifest: pd.DataFrame, fold: int | None) -> pd.DataFrame:
    """The manifest as fold `fold`'s run splits it: test on the fold, validate on its
    validation part, train on the rest. A manifest without folds (fold None) is returned as is."""
    if fold is None:
        return manifest
    if "fold" not in manifest:
        raise SplitError(f"A run of fold {fold} needs a k-fold manifest (split strategy kfold).")
    folds = pd.to_numeric(manifest["fold"])
    split = np.where(
        folds == fold, "test", np.where(pd.to_numeric(manifest["val_fold"]) == fold, "val", "train")
    )
    return manifest.assign(split=split)


def read_groups(path: str | Path, root: Path | None = None) -> dict[str, str]:
    """An `id,group` CSV (e.g. CVC-ClinicDB frames and their video sequences), relative to
    `root` (the working directory, the project root under `kedro run`)."""
    path = Path(path)
    path = path if path.is_absolute() else (Path.cwd() if root is None else root) / path
    if not path.is_file():
        raise SplitError(f"{path}: groups file not found. It must be an `id,group` CSV.")
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    if not {"id", "group"} <= set(table.columns):
        raise SplitError(f"{path}: needs the columns id and group, has {list(table.columns)}.")
    duplicated = table["id"][table["id"].duplicated()].tolist()
    if duplicated:
        raise SplitError(_listed(f"{path}: ids listed twice", duplicated)[0])
    return {
        _strip_image_suffix(i): group for i, group in zip(table["id"], table["group"], strict=True)
    }


def build_split_manifest(pairs: Sequence[SamplePair], assignment: Assignment) -> pd.DataFrame:
    """Table id, image_path, mask_path, split, subset sorted by id: the source of truth for a run.

    `subset` is where an id comes from: the layout's subset ("all", "train" or a PraNet test
    set), or the id list it was listed in.
    """
    pair_ids = {pair.id for pair in pairs}
    missing = sorted(pair_ids - assignment.keys())
    unknown = sorted(assignment.keys() - pair_ids)
    if missing or unknown:
        raise SplitError(
            f"Split assignment does not match the pairs: no split for {missing}; "
            f"assigned ids not in the dataset: {unknown}."
        )
    rows = []
    for pair in sorted(pairs, key=lambda pair: pair.id):
        given = assignment[pair.id]
        row = {"split": given} if isinstance(given, str) else dict(given)
        rows.append(
            {
                "id": pair.id,
                "image_path": pair.image_path,
                "mask_path": pair.mask_path,
                "subset": pair.subset,
                **row,
            }
        )
    columns = MANIFEST_COLUMNS + sorted(
        {key for row in rows for key in row} - set(MANIFEST_COLUMNS)
    )
    return pd.DataFrame(rows, columns=columns)


class IdListFiles(Settings):
    """Files of ids, one per line, relative to the project root."""

    train: str
    test: str
    val: str | None = None  # None: validation is carved out of train


def _random_strategy(
    pairs: Sequence[SamplePair],
    seed: int = 42,
    val_fraction: Fraction = 0.1,
    test_fraction: Fraction = 0.1,
) -> dict[str, str]:
    """Sorted ids, test then validation carved out with scikit-learn (the FCBFormer recipe)."""
    return random_split([pair.id for pair in pairs], seed, val_fraction, test_fraction)


def _id_lists_strategy(
    pairs: Sequence[SamplePair],
    id_lists: IdListFiles,
    seed: int = 42,
    val_fraction: Fraction = 0.1,
) -> Assignment:
    """Published id lists (see `read_id_lists`), then `split_from_id_lists`: without a val
    list, `val_fraction` of train is drawn with `seed`."""
    return split_from_id_lists(
        [pair.id for pair in pairs], read_id_lists(dict(id_lists)), seed, val_fraction
    )


def _kfold_strategy(
    pairs: Sequence[SamplePair],
    folds: Annotated[int, Field(ge=2)] = 5,
    seed: int = 42,
    val_fraction: Fraction = 0.1,
    groups: str | None = None,  # an `id,group` CSV: each group stays within one fold
) -> Assignment:
    """`kfold_split`, with the groups file read (see `read_groups`)."""
    grouping = read_groups(groups) if groups else None
    return kfold_split([pair.id for pair in pairs], folds, seed, val_fraction, grouping)


SPLIT_STRATEGIES: dict[str, Callable[..., Assignment]] = {
    "random": _random_strategy,
    "id_lists": _id_lists_strategy,
    "pranet": split_by_subset,  # PraNet: TrainDataset (minus a validation part), every test set
    "kfold": _kfold_strategy,
}
# The `split` block of each strategy: `strategy` and the strategy's keyword arguments.
SPLIT_OPTIONS: dict[str, type[Settings]] = {
    name: options_model(
        strategy, f"{name.title().replace('_', '')}Split", ("pairs",), ("strategy", name)
    )
    for name, strategy in SPLIT_STRATEGIES.items()
}


def assign_splits(pairs: Sequence[SamplePair], strategy: str, **options: object) -> Assignment:
    """Assign a split to every pair with the named strategy from SPLIT_STRATEGIES."""
    if strategy not in SPLIT_STRATEGIES:
        raise SplitError(f"Unknown split strategy {strategy!r}; valid: {sorted(SPLIT_STRATEGIES)}.")
    function = SPLIT_STRATEGIES[strategy]
    signature = inspect.signature(function)
    try:
        signature.bind(pairs, **options)
    except TypeError as error:
        accepted = [name for name in signature.parameters if name != "pairs"]
        raise SplitError(
            f"Split strategy {strategy!r} got options {sorted(options)} ({error}); "
            f"it accepts {accepted}."
        ) from error
    return function(pairs, **options)


def _carve(sorted_ids: list[str], n_carved: int, seed: int) -> tuple[list[str], list[str]]:
    """Split off `n_carved` ids at random (sklearn, `seed`); returns (rest, carved)."""
    if n_carved == 0:
        return sorted_ids, []
    if n_carved >= len(sorted_ids):
        raise SplitError(
            f"Cannot carve {n_carved} of {len(sorted_ids)} ids and keep any for training; "
            "lower the val/test fractions or use more data."
        )
    from sklearn.model_selection import train_test_split

    rest, carved = train_test_split(sorted_ids, test_size=n_carved, random_state=seed)
    return list(rest), list(carved)


def _assignment(**ids_by_split: list[str]) -> dict[str, str]:
    return {sample_id: split for split, ids in ids_by_split.items() for sample_id in ids}


def _sorted_unique(ids: Iterable[str]) -> list[str]:
    """Sorted ids; duplicates are an error because they would make the split ambiguous."""
    counts = Counter(ids)
    duplicates = sorted(sample_id for sample_id, count in counts.items() if count > 1)
    if duplicates:
        raise SplitError(f"Duplicate ids cannot be split: {duplicates}")
    return sorted(counts)


def _check_fractions(**fractions: float) -> None:
    """Each fraction must be in [0, 1) and together they must leave data for training."""
    bad = {name: value for name, value in fractions.items() if not 0 <= value < 1}
    if bad or sum(fractions.values()) >= 1:
        raise SplitError(
            f"Split fractions {fractions} must each be in [0, 1) and sum to less than 1."
        )


def _is_path_like(sample_id: str) -> bool:
    """Whether a listed id is an absolute path or climbs folders ('../x', '/etc/x'), not a name.

    Ids are file stems, or '<test set>/<stem>' in the PraNet layout.
    """
    path = PurePosixPath(sample_id.replace("\\", "/"))
    return path.is_absolute() or ".." in path.parts or "\x00" in sample_id


def _strip_image_suffix(name: str) -> str:
    suffix = PurePosixPath(name).suffix
    return name[: -len(suffix)] if suffix.lower() in IMAGE_SUFFIXES else name
