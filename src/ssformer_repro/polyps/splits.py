"""Assign every sample to train / val / test, reproducibly, and write the split manifest."""

from __future__ import annotations

import inspect
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path, PurePosixPath

import pandas as pd
from sklearn.model_selection import train_test_split

from ssformer_repro.polyps.layouts import IMAGE_SUFFIXES, SamplePair

MANIFEST_COLUMNS = ["id", "image_path", "mask_path", "split"]


class SplitError(ValueError):
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
    ids: Iterable[str], id_lists: Mapping[str, Sequence[str]]
) -> dict[str, str]:
    """Fixed split from published id lists (e.g. Kvasir-SEG train.txt / val.txt).

    Every dataset id must be in exactly one list and every listed id in the dataset.
    """
    dataset_ids = set(_sorted_unique(ids))
    assignment: dict[str, str] = {}
    problems = []
    for split, listed_ids in id_lists.items():
        for sample_id in dict.fromkeys(listed_ids):
            if _is_path_like(sample_id):
                problems.append(
                    f"id {sample_id!r} in list {split!r} is a path that leaves the dataset "
                    "folder, not a sample id; list file stems such as 'cju0qkwl35piu0993l0dewei2'"
                )
            elif sample_id not in dataset_ids:
                problems.append(f"id {sample_id!r} in list {split!r} is not in the dataset")
            elif sample_id in assignment:
                problems.append(
                    f"id {sample_id!r} is in both {assignment[sample_id]!r} and {split!r}"
                )
            else:
                assignment[sample_id] = split
    problems += [
        f"id {sample_id!r} is in none of the lists {sorted(id_lists)}"
        for sample_id in sorted(dataset_ids - assignment.keys())
    ]
    if problems:
        raise SplitError(
            f"The id lists do not partition the dataset ({len(problems)} problems):\n  "
            + "\n  ".join(problems)
        )
    return assignment


def read_id_list(path: str | Path) -> list[str]:
    """Read one id per line, skipping blank lines and dropping image extensions ('a.jpg' -> 'a')."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [_strip_image_suffix(line.strip()) for line in lines if line.strip()]


def split_by_subset(
    pairs: Sequence[SamplePair], seed: int, val_fraction: float = 0.1
) -> dict[str, str]:
    """PraNet protocol: the "train" subset is train (minus a random val part); every test set is test."""
    _check_fractions(val_fraction=val_fraction)
    train_ids = _sorted_unique(pair.id for pair in pairs if pair.subset == "train")
    if not train_ids:
        raise SplitError("No pair has subset 'train'; the 'pranet' split needs the pranet layout.")
    train, val = _carve(train_ids, round(len(train_ids) * val_fraction), seed)
    test = [pair.id for pair in pairs if pair.subset != "train"]
    return _assignment(train=train, val=val, test=test)


def build_split_manifest(
    pairs: Sequence[SamplePair], assignment: Mapping[str, str]
) -> pd.DataFrame:
    """Table id, image_path, mask_path, split sorted by id: the single source of truth for a run."""
    pair_ids = {pair.id for pair in pairs}
    missing = sorted(pair_ids - assignment.keys())
    unknown = sorted(assignment.keys() - pair_ids)
    if missing or unknown:
        raise SplitError(
            f"Split assignment does not match the pairs: no split for {missing}; "
            f"assigned ids not in the dataset: {unknown}."
        )
    rows = [
        (pair.id, pair.image_path, pair.mask_path, assignment[pair.id])
        for pair in sorted(pairs, key=lambda pair: pair.id)
    ]
    return pd.DataFrame(rows, columns=MANIFEST_COLUMNS)


def _random_strategy(
    pairs: Sequence[SamplePair], seed: int, val_fraction: float = 0.1, test_fraction: float = 0.1
) -> dict[str, str]:
    return random_split([pair.id for pair in pairs], seed, val_fraction, test_fraction)


def _id_lists_strategy(
    pairs: Sequence[SamplePair], id_lists: Mapping[str, Sequence[str]]
) -> dict[str, str]:
    return split_from_id_lists([pair.id for pair in pairs], id_lists)


SPLIT_STRATEGIES: dict[str, Callable[..., dict[str, str]]] = {
    "random": _random_strategy,
    "id_lists": _id_lists_strategy,
    "pranet": split_by_subset,
}


def assign_splits(pairs: Sequence[SamplePair], strategy: str, **options: object) -> dict[str, str]:
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
