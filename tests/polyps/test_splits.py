from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from sklearn.model_selection import train_test_split

from ssformer_repro.polyps.layouts import SamplePair, discover_pairs
from ssformer_repro.polyps.splits import (
    SPLIT_STRATEGIES,
    SplitError,
    assign_splits,
    build_split_manifest,
    kfold_split,
    random_split,
    read_groups,
    read_id_list,
    split_by_subset,
    split_for_fold,
    split_from_id_lists,
)
from tests.polyps.conftest import write_pair


def _ids(count: int) -> list[str]:
    return [f"frame_{index:04d}" for index in range(count)]


def _pairs(ids: list[str], subset: str = "all") -> list[SamplePair]:
    return [SamplePair(i, f"img/{i}.jpg", f"msk/{i}.jpg", subset) for i in ids]


@pytest.mark.parametrize(("count", "sizes"), [(1000, (800, 100, 100)), (612, (490, 61, 61))])
def test_random_split_sizes_match_the_published_recipe(count: int, sizes: tuple[int, ...]) -> None:
    assignment = random_split(_ids(count), seed=42)
    counts = Counter(assignment.values())
    assert (counts["train"], counts["val"], counts["test"]) == sizes
    assert sorted(assignment) == _ids(count)


def test_random_split_is_the_fcbformer_two_step_train_test_split() -> None:
    ids = _ids(100)
    rest, test = train_test_split(ids, test_size=10, random_state=7)
    _, val = train_test_split(rest, test_size=10, random_state=7)

    assignment = random_split(list(reversed(ids)), seed=7)

    assert sorted(i for i, split in assignment.items() if split == "test") == sorted(test)
    assert sorted(i for i, split in assignment.items() if split == "val") == sorted(val)


def test_random_split_is_deterministic_per_seed() -> None:
    assert random_split(_ids(200), seed=1) == random_split(_ids(200), seed=1)
    assert random_split(_ids(200), seed=1) != random_split(_ids(200), seed=2)


def test_random_split_allows_no_validation_split() -> None:
    assert set(random_split(_ids(10), seed=0, val_fraction=0.0).values()) == {"train", "test"}


@pytest.mark.parametrize(
    ("val_fraction", "test_fraction"), [(-0.1, 0.1), (0.1, 1.0), (0.5, 0.5), (0.6, 0.6)]
)
def test_random_split_rejects_bad_fractions(val_fraction: float, test_fraction: float) -> None:
    with pytest.raises(SplitError, match="must each be in \\[0, 1\\) and sum to less than 1"):
        random_split(_ids(10), seed=0, val_fraction=val_fraction, test_fraction=test_fraction)


def test_random_split_rejects_duplicate_ids_and_too_few_ids() -> None:
    with pytest.raises(SplitError, match="Duplicate ids.*'a'"):
        random_split(["a", "b", "a"], seed=0)
    with pytest.raises(SplitError, match="Cannot carve 1 of 1 ids"):
        random_split(["a", "b"], seed=0, val_fraction=0.5, test_fraction=0.4)


def test_split_from_id_lists_assigns_listed_ids_and_says_which_list() -> None:
    assignment = split_from_id_lists(["a", "b", "c"], {"train": ["a", "c"], "val": ["b"]})
    assert assignment == {
        "a": {"split": "train", "subset": "train"},
        "b": {"split": "val", "subset": "val"},
        "c": {"split": "train", "subset": "train"},
    }


def test_without_a_val_list_validation_is_carved_out_of_train_never_test() -> None:
    ids = _ids(40)
    lists = {"train": ids[:30], "test": ids[30:]}
    assignment = split_from_id_lists(ids, lists, seed=3, val_fraction=0.2)
    splits = Counter(row["split"] for row in assignment.values())
    assert splits == {"train": 24, "val": 6, "test": 10}
    assert {i for i, row in assignment.items() if row["split"] == "val"} <= set(ids[:30])
    assert all(row["subset"] == "train" for row in assignment.values() if row["split"] == "val")
    assert split_from_id_lists(ids, lists, seed=3, val_fraction=0.2) == assignment
    assert split_from_id_lists(ids, lists, seed=4, val_fraction=0.2) != assignment


def test_split_from_id_lists_reports_every_problem() -> None:
    with pytest.raises(SplitError) as error:
        split_from_id_lists(["a", "b", "c"], {"train": ["a", "x", "x"], "val": ["a"]})
    message = str(error.value)
    assert "list 'train': listed twice: 'x' (1 in all)" in message
    assert "list 'train': ids not in the dataset: 'x' (1 in all)" in message
    assert "ids in two lists: 'a (train, val)' (1 in all)" in message
    assert "dataset ids in no list: 'b', 'c' (2 in all)" in message


def test_many_problem_ids_are_shown_five_at_a_time_with_a_count() -> None:
    with pytest.raises(SplitError, match=r"'frame_0004' and 15 more \(20 in all\)"):
        split_from_id_lists(_ids(21), {"train": ["frame_0020"]})


def test_read_id_list_strips_extensions_blanks_comments_and_whitespace(tmp_path: Path) -> None:
    path = tmp_path / "train.txt"
    path.write_bytes(
        b"# Kvasir-SEG train ids\ncju0qkwl35piu0993l0dewei2.jpg\r\n\r\n"
        b"  cju0qoxqj9q6s0835b43399p4 \r\nv1.2.PNG\n"
    )
    assert read_id_list(path) == ["cju0qkwl35piu0993l0dewei2", "cju0qoxqj9q6s0835b43399p4", "v1.2"]
    with pytest.raises(SplitError, match=r"missing.txt: id list file not found"):
        read_id_list(tmp_path / "missing.txt")


def test_pranet_split_carves_val_from_train_and_tests_every_test_set() -> None:
    pairs = _pairs(_ids(20), "train") + _pairs(["CVC-300/a", "Kvasir/a"], "CVC-300")

    assignment = split_by_subset(pairs, seed=0, val_fraction=0.1)

    assert Counter(assignment.values()) == {"train": 18, "val": 2, "test": 2}
    assert assignment["CVC-300/a"] == assignment["Kvasir/a"] == "test"
    assert split_by_subset(pairs, seed=0, val_fraction=0.1) == assignment


def test_pranet_split_needs_a_train_subset() -> None:
    with pytest.raises(SplitError, match="No pair has subset 'train'"):
        split_by_subset(_pairs(["a"]), seed=0)


def test_manifest_columns_order_and_errors() -> None:
    pairs = _pairs(["b", "a"])
    manifest = build_split_manifest(pairs, {"a": "train", "b": "test"})
    assert list(manifest.columns) == ["id", "image_path", "mask_path", "split", "subset"]
    assert manifest.to_numpy().tolist() == [
        ["a", "img/a.jpg", "msk/a.jpg", "train", "all"],
        ["b", "img/b.jpg", "msk/b.jpg", "test", "all"],
    ]
    with pytest.raises(SplitError, match=r"no split for \['b'\]"):
        build_split_manifest(pairs, {"a": "train"})
    with pytest.raises(SplitError, match=r"not in the dataset: \['z'\]"):
        build_split_manifest(pairs, {"a": "train", "b": "val", "z": "val"})


def test_manifest_is_byte_identical_across_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for index in range(12):
        write_pair(tmp_path / "kvasir", "images", "masks", f"polyp {index}.jpg")
    monkeypatch.chdir(tmp_path)

    for attempt in ("first.csv", "second.csv"):
        pairs = discover_pairs("kvasir", "kvasir")
        build_split_manifest(pairs, assign_splits(pairs, "random", seed=42)).to_csv(
            attempt, index=False
        )

    first = (tmp_path / "first.csv").read_bytes()
    assert first == (tmp_path / "second.csv").read_bytes()
    assert first.startswith(
        b"id,image_path,mask_path,split,subset\npolyp 0,kvasir/images/polyp 0.jpg,"
    )


def test_assign_splits_dispatches_through_the_registry() -> None:
    pairs = _pairs(_ids(30))
    assert sorted(SPLIT_STRATEGIES) == ["id_lists", "kfold", "pranet", "random"]
    assert assign_splits(pairs, "random", seed=3) == random_split(_ids(30), seed=3)


def test_the_id_lists_strategy_reads_its_files_relative_to_the_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists/train.txt").write_text("\n".join(f"{i}.jpg" for i in _ids(30)[:20]))
    (tmp_path / "lists/val.txt").write_text("\n".join(_ids(30)[20:]))
    monkeypatch.chdir(tmp_path)
    files = {"train": "lists/train.txt", "val": "lists/val.txt", "test": None}
    lists = {"train": _ids(30)[:20], "val": _ids(30)[20:]}
    expected = split_from_id_lists(_ids(30), lists)
    assert assign_splits(_pairs(_ids(30)), "id_lists", id_lists=files) == expected


def test_assign_splits_explains_unknown_strategy_and_options() -> None:
    with pytest.raises(SplitError, match=r"valid: \['id_lists', 'kfold', 'pranet', 'random'\]"):
        assign_splits(_pairs(["a"]), "holdout")
    with pytest.raises(SplitError, match=r"'random' got options \['sed'\].*accepts \['seed'"):
        assign_splits(_pairs(["a"]), "random", sed=1)


def test_kfold_tests_every_image_exactly_once_in_folds_of_equal_size() -> None:
    ids = _ids(61)
    assignment = kfold_split(ids, folds=5, seed=42, val_fraction=0.1)
    folds = Counter(row["fold"] for row in assignment.values())
    assert sorted(folds) == [0, 1, 2, 3, 4] and sum(folds.values()) == 61
    assert max(folds.values()) - min(folds.values()) <= 1
    manifest = build_split_manifest(_pairs(ids), assignment)
    assert set(manifest["split"]) == {"cv"} and list(manifest.columns[-2:]) == ["fold", "val_fold"]
    tested = []
    for fold in range(5):
        split = split_for_fold(manifest, fold).set_index("id")["split"]
        tested += split[split == "test"].index.tolist()
        val = split[split == "val"].index
        assert len(val) == round(0.1 * (61 - folds[fold]))
        assert not set(val) & set(split[split == "test"].index)  # selection never on the test fold
    assert sorted(tested) == ids  # every image a test image exactly once
    assert kfold_split(ids, 5, 42, 0.1) == assignment
    assert kfold_split(ids, 5, 43, 0.1) != assignment


def test_grouped_kfold_keeps_each_group_in_one_fold() -> None:
    ids = _ids(60)
    groups = {sample_id: f"sequence{index // 7}" for index, sample_id in enumerate(ids)}
    assignment = kfold_split(ids, folds=3, seed=1, val_fraction=0.2, groups=groups)
    by_group: dict[str, set] = {}
    for sample_id, row in assignment.items():
        by_group.setdefault(groups[sample_id], set()).add((row["fold"], row["val_fold"]))
    assert all(len(places) == 1 for places in by_group.values())  # folds and validation alike
    sizes = Counter(row["fold"] for row in assignment.values())
    assert max(sizes.values()) - min(sizes.values()) <= 7  # at most one group apart


def test_kfold_problems_are_clear() -> None:
    with pytest.raises(SplitError, match="images with no group in the groups file: 'frame_0002'"):
        kfold_split(_ids(3), 2, 0, 0.1, {"frame_0000": "a", "frame_0001": "b"})
    with pytest.raises(SplitError, match="Cannot make 3 folds of 2 groups"):
        kfold_split(_ids(4), 3, 0, 0.1, dict.fromkeys(_ids(4), "a") | {"frame_0003": "b"})
    with pytest.raises(SplitError, match="val_fraction 0.6 is too large for 3 folds"):
        kfold_split(_ids(30), 3, 0, 0.6)
    with pytest.raises(SplitError, match="needs a k-fold manifest"):
        split_for_fold(build_split_manifest(_pairs(["a"]), {"a": "train"}), 0)


def test_kfold_manifests_are_byte_identical_across_runs(tmp_path: Path) -> None:
    groups = tmp_path / "groups.csv"
    groups.write_text("id,group\n" + "".join(f"{i}.png,s{n % 4}\n" for n, i in enumerate(_ids(20))))
    texts = [
        build_split_manifest(
            _pairs(_ids(20)),
            assign_splits(_pairs(_ids(20)), "kfold", folds=4, seed=3, groups=str(groups)),
        ).to_csv(index=False)
        for _ in range(2)
    ]
    assert texts[0] == texts[1]
    with pytest.raises(SplitError, match="groups file not found"):
        read_groups(tmp_path / "missing.csv")
