"""The one atomic-write helper: files, writers and folders appear complete or not at all."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from ssformer_repro.storage.atomic import (
    DiskFullError,
    atomic_folder,
    atomic_path,
    remove_partial_writes,
    write_atomically,
)


def test_atomic_folder_swaps_in_the_new_folder_and_removes_the_old(tmp_path: Path) -> None:
    target = tmp_path / "dataset"
    target.mkdir()
    (target / "old.txt").write_text("old")

    with atomic_folder(target) as staging:
        (staging / "new.txt").write_text("new")
        assert (target / "old.txt").is_file()  # readers see the old folder until the swap

    assert [path.name for path in target.iterdir()] == ["new.txt"]
    assert [path.name for path in tmp_path.iterdir()] == ["dataset"]


def test_a_failed_folder_write_keeps_the_old_folder(tmp_path: Path) -> None:
    target = tmp_path / "dataset"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(RuntimeError, match="boom"), atomic_folder(target) as staging:
        (staging / "new.txt").write_text("new")
        raise RuntimeError("boom")
    assert [path.name for path in tmp_path.iterdir()] == ["dataset"]
    assert (target / "old.txt").read_text() == "old"


def test_atomic_path_writes_beside_the_file_and_keeps_its_suffix(tmp_path: Path) -> None:
    target = tmp_path / "figure.png"
    target.write_bytes(b"old")
    with atomic_path(target) as partial:
        assert partial.parent == tmp_path and partial.name.startswith(".figure.")
        assert partial.suffix == ".png"
        partial.write_bytes(b"new")
        assert target.read_bytes() == b"old"
    assert target.read_bytes() == b"new"
    assert [path.name for path in tmp_path.iterdir()] == ["figure.png"]


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "metrics.json"
    target.write_text("old")

    def fail(handle) -> None:
        handle.write(b"half")
        raise ValueError("cannot serialise")

    with pytest.raises(ValueError, match="cannot serialise"):
        write_atomically(target, fail)
    assert target.read_text() == "old"
    assert [path.name for path in tmp_path.iterdir()] == ["metrics.json"]


def test_a_full_disk_names_the_file_it_could_not_write(tmp_path: Path) -> None:
    def full(handle) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(DiskFullError, match=r"no space left on device while writing .*last\.pt"):
        write_atomically(tmp_path / "last.pt", full)


def test_partial_writes_of_killed_writers_are_removed_one_file_or_all(tmp_path: Path) -> None:
    for name in (".last.1a2b3c4d.partial.pt", ".history.5e6f7a8b.partial.csv"):
        (tmp_path / name).write_bytes(b"half")
    (tmp_path / ".keep.txt").write_text("not ours")
    removed = remove_partial_writes(tmp_path, of=tmp_path / "last.pt")
    assert [path.name for path in removed] == [".last.1a2b3c4d.partial.pt"]
    assert [path.name for path in remove_partial_writes(tmp_path)] == [
        ".history.5e6f7a8b.partial.csv"
    ]
    assert sorted(path.name for path in tmp_path.iterdir()) == [".keep.txt"]
