"""Manifests, caches and reports are written atomically: a crash never leaves a half file."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
import yaml
from kedro.io import AbstractDataset, DatasetError

from ssformer_repro.polyps.cache import DecodedCache
from ssformer_repro.storage.catalog import AtomicDataset, DecodedCacheDataset
from tests.conftest import PROJECT_ROOT

matplotlib.use("Agg")

ATOMIC = "ssformer_repro.storage.catalog.AtomicDataset"
ATOMIC_FOLDERS = "ssformer_repro.storage.catalog.DecodedCacheDataset"
# Loads as a folder path for nodes that write into it themselves (checkpoints, atomic too).
INPUT_FOLDER = "ssformer_repro.storage.catalog.FolderDataset"
IN_MEMORY = "MemoryDataset"  # listed for kedro-viz's layer only; the node writes its files


def atomic(kind: str, path: Path, **options) -> AbstractDataset:
    """An AtomicDataset made the way the catalog makes it."""
    config = {"type": ATOMIC, "filepath": str(path), "dataset": {"type": kind, **options}}
    return AbstractDataset.from_config(path.name, config)


def test_each_kind_of_output_round_trips_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    table = pd.DataFrame({"id": ["a", "b"], "split": ["train", "test"]})
    csv = atomic("pandas.CSVDataset", tmp_path / "split.csv", save_args={"index": False})
    csv.save(table)
    pd.testing.assert_frame_equal(csv.load(), table)

    metrics = atomic("json.JSONDataset", tmp_path / "metrics.json")
    metrics.save({"mdice": 0.9})
    assert metrics.load() == {"mdice": 0.9}

    report = atomic("text.TextDataset", tmp_path / "table.md")
    report.save("| a |\n")
    assert report.load() == "| a |\n"

    figure, _ = plt.subplots()
    picture = atomic("matplotlib.MatplotlibDataset", tmp_path / "curves.png")
    picture.save(figure)
    plt.close(figure)
    assert (tmp_path / "curves.png").read_bytes().startswith(b"\x89PNG")

    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "curves.png",
        "metrics.json",
        "split.csv",
        "table.md",
    ]


def test_a_failed_save_keeps_the_previous_file(tmp_path: Path) -> None:
    csv = atomic("pandas.CSVDataset", tmp_path / "split.csv", save_args={"index": False})
    csv.save(pd.DataFrame({"id": ["old"]}))

    with pytest.raises(DatasetError):
        csv.save("not a data frame")  # fails inside the wrapped dataset's save

    assert csv.load()["id"].tolist() == ["old"]
    assert [p.name for p in tmp_path.iterdir()] == ["split.csv"]


def test_filepath_is_given_once_and_must_be_local() -> None:
    with pytest.raises(DatasetError, match="beside `dataset`"):
        AtomicDataset({"type": "pandas.CSVDataset", "filepath": "a.csv"}, "a.csv")
    with pytest.raises(DatasetError, match="only local files"):
        AtomicDataset({"type": "pandas.CSVDataset"}, "s3://bucket/a.csv")


KILLED_WHILE_SAVING = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import numpy as np, pandas as pd
    from kedro.io import AbstractDataset
    from ssformer_repro.polyps.cache import DecodedCache
    from ssformer_repro.storage import catalog

    what, path = sys.argv[1], Path(sys.argv[2])

    def hang(*args, **kwargs):
        print("SAVING", flush=True)
        time.sleep(60)

    if what == "table":
        real_to_csv = pd.DataFrame.to_csv

        def half_then_hang(frame, path_or_buf=None, **kwargs):
            real_to_csv(frame.head(len(frame) // 2), path_or_buf, **kwargs)
            path_or_buf.flush()
            hang()

        pd.DataFrame.to_csv = half_then_hang
        config = {"type": "pandas.CSVDataset", "save_args": {"index": False}}
        dataset = AbstractDataset.from_config("t", {
            "type": "ssformer_repro.storage.catalog.AtomicDataset",
            "filepath": str(path),
            "dataset": config,
        })
        dataset.save(pd.DataFrame({"id": [f"new{i}" for i in range(100)]}))
    else:
        real_save = np.save
        catalog.np.save = lambda file, array: (real_save(file, array), hang())
        cache = DecodedCache(["new"], np.ones((1, 8, 8, 3), np.uint8), np.ones((1, 8, 8), np.uint8),
                             ["train"])
        catalog.DecodedCacheDataset(str(path)).save(cache)
    """
)


def kill_while_saving(what: str, path: Path) -> None:
    saver = subprocess.Popen(
        [sys.executable, "-c", KILLED_WHILE_SAVING, what, str(path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert saver.stdout.readline().strip() == "SAVING"
    saver.send_signal(signal.SIGKILL)
    saver.wait(timeout=30)


def test_manifest_killed_mid_save_keeps_the_previous_one(tmp_path: Path) -> None:
    path = tmp_path / "kvasir_split.csv"
    manifest = atomic("pandas.CSVDataset", path, save_args={"index": False})
    manifest.save(pd.DataFrame({"id": ["old1", "old2"]}))

    kill_while_saving("table", path)

    assert manifest.load()["id"].tolist() == ["old1", "old2"]
    leftovers = [p for p in tmp_path.iterdir() if p != path]
    assert len(leftovers) == 1 and leftovers[0].name.startswith(".kvasir_split.")
    assert len(pd.read_csv(leftovers[0])) == 50  # the half-written file, hidden, never loaded

    manifest.save(pd.DataFrame({"id": ["new"]}))  # the next save clears it away
    assert [p.name for p in tmp_path.iterdir()] == ["kvasir_split.csv"]


def test_decoded_cache_killed_mid_save_keeps_the_previous_one(tmp_path: Path) -> None:
    path = tmp_path / "kvasir_cache"
    dataset = DecodedCacheDataset(str(path))
    images, masks = np.zeros((2, 8, 8, 3), np.uint8), np.zeros((2, 8, 8), np.uint8)
    dataset.save(DecodedCache(["a", "b"], images, masks, ["train", "val"]))

    kill_while_saving("cache", path)

    assert dataset.load().ids == ["a", "b"]


def test_every_file_output_of_the_catalog_is_written_atomically() -> None:
    """Needs the catalog change of docs/reliability.md (file datasets wrapped in AtomicDataset)."""
    catalog = yaml.safe_load((PROJECT_ROOT / "conf/base/catalog.yml").read_text())
    not_atomic = sorted(
        name
        for name, entry in catalog.items()
        if entry["type"] not in (ATOMIC, ATOMIC_FOLDERS, INPUT_FOLDER, IN_MEMORY)
    )
    assert not_atomic == []
    in_memory = [name for name, entry in catalog.items() if entry["type"] == IN_MEMORY]
    assert all("filepath" not in catalog[name] for name in in_memory)  # no file behind them
    for name, entry in catalog.items():
        text = yaml.safe_dump(entry).replace("{run}", "kvasir.mit_b0.pld.seed42.fold3")
        resolved = yaml.safe_load(text.replace("{", "").replace("}", ""))
        AbstractDataset.from_config(name, resolved)  # each entry builds
