from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from kedro.io import DataCatalog, DatasetError

from ssformer_repro.polyps.cache import DecodedCache, build_decoded_cache
from ssformer_repro.storage.catalog import DecodedCacheDataset
from tests.polyps.conftest import ellipse_mask, write_image, write_mask

SPLITS = {"a": "train", "b": "val", "c": "train", "d": "test", "e": "val"}


@pytest.fixture
def manifest(tmp_path: Path) -> pd.DataFrame:
    """Five uniformly coloured frames (colour = 10 * row number) with ellipse masks."""
    rows = []
    for number, (sample_id, split) in enumerate(SPLITS.items(), start=1):
        image = write_image(
            tmp_path / "raw" / f"{sample_id}.jpg", np.full((30, 50, 3), 10 * number, np.uint8)
        )
        mask = write_mask(tmp_path / "raw" / f"{sample_id}_mask.png", ellipse_mask(30, 50))
        rows.append((sample_id, image.as_posix(), mask.as_posix(), split))
    return pd.DataFrame(rows, columns=["id", "image_path", "mask_path", "split"])


def _cache(ids: list[str], splits: list[str], size: int = 8) -> DecodedCache:
    rng = np.random.default_rng(0)
    return DecodedCache(
        ids=ids,
        images=rng.integers(0, 256, (len(ids), size, size, 3), dtype=np.uint8),
        masks=rng.integers(0, 2, (len(ids), size, size), dtype=np.uint8),
        splits=splits,
    )


def test_build_decodes_requested_splits_grouped_by_split(manifest: pd.DataFrame) -> None:
    cache = build_decoded_cache(manifest, size=16)

    assert cache.ids == ["a", "c", "b", "e"]
    assert cache.splits == ["train", "train", "val", "val"]
    assert cache.images.shape == (4, 16, 16, 3) and cache.images.dtype == np.uint8
    assert cache.masks.shape == (4, 16, 16) and cache.masks.dtype == np.uint8
    assert [int(np.median(image)) for image in cache.images] == [10, 30, 20, 50]
    assert set(np.unique(cache.masks)) == {0, 1}
    assert cache.masks.mean() == pytest.approx(ellipse_mask(30, 50).mean(), abs=0.05)


def test_build_rejects_absent_splits_and_columns(manifest: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match=r"Splits \['holdout'\] have no rows"):
        build_decoded_cache(manifest, size=8, splits=("train", "holdout"))
    with pytest.raises(ValueError, match=r"lacks columns \['mask_path'\]"):
        build_decoded_cache(manifest.drop(columns="mask_path"), size=8)


def test_subset_selects_one_split_and_rejects_unknown_ones() -> None:
    cache = _cache(["a", "b", "c", "d"], ["train", "val", "train", "val"])
    val = cache.subset("val")
    assert val.ids == ["b", "d"] and val.splits == ["val", "val"]
    assert np.array_equal(val.images, cache.images[[1, 3]])
    with pytest.raises(ValueError, match="No rows with split 'test'"):
        cache.subset("test")


def test_cache_rejects_inconsistent_parts() -> None:
    with pytest.raises(ValueError, match="differ in length: 2 ids, 1 splits"):
        _cache(["a", "b"], ["train"])


def test_dataset_round_trip_is_exact_and_memory_mapped(tmp_path: Path) -> None:
    cache = _cache(["001", "NA", "polyp 3 é"], ["train", "train", "val"])
    dataset = DecodedCacheDataset(path=str(tmp_path / "decoded"))
    assert not dataset.exists()

    dataset.save(cache)
    loaded = dataset.load()

    assert dataset.exists()
    assert loaded.ids == ["001", "NA", "polyp 3 é"] and loaded.splits == cache.splits
    assert isinstance(loaded.images, np.memmap) and isinstance(loaded.masks, np.memmap)
    assert loaded.images.dtype == loaded.masks.dtype == np.uint8
    assert np.array_equal(loaded.images, cache.images) and np.array_equal(loaded.masks, cache.masks)
    train = loaded.subset("train")
    assert isinstance(train.images, np.memmap) and np.shares_memory(train.images, loaded.images)
    assert "decoded" in str(dataset)


def test_dataset_works_from_a_kedro_catalog_entry(tmp_path: Path) -> None:
    catalog = DataCatalog.from_config(
        {
            "decoded": {
                "type": "ssformer_repro.storage.catalog.DecodedCacheDataset",
                "path": str(tmp_path / "decoded"),
            }
        }
    )
    catalog.save("decoded", _cache(["a"], ["train"]))
    assert catalog.load("decoded").ids == ["a"]


def test_saving_again_replaces_the_old_cache_completely(tmp_path: Path) -> None:
    dataset = DecodedCacheDataset(path=str(tmp_path / "decoded"))
    dataset.save(_cache(["a", "b"], ["train", "val"], size=8))
    old = dataset.load()
    new = _cache(["x"], ["train"], size=4)

    dataset.save(new)

    loaded = dataset.load()
    assert loaded.ids == ["x"] and np.array_equal(loaded.images, new.images)
    assert [path.name for path in tmp_path.iterdir()] == ["decoded"]
    assert old.images.shape == (2, 8, 8, 3)  # an earlier memory map stays readable


def test_a_failed_save_keeps_the_old_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dataset = DecodedCacheDataset(path=str(tmp_path / "decoded"))
    old = _cache(["a"], ["train"])
    dataset.save(old)

    def fail(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", fail)
    with pytest.raises(DatasetError, match="disk full"):
        dataset.save(_cache(["x", "y"], ["train", "val"]))
    monkeypatch.undo()

    assert np.array_equal(dataset.load().images, old.images)
    assert [path.name for path in tmp_path.iterdir()] == ["decoded"]


def test_missing_or_corrupt_files_raise_clear_errors(tmp_path: Path) -> None:
    folder = tmp_path / "decoded"
    dataset = DecodedCacheDataset(path=str(folder))
    with pytest.raises(
        DatasetError, match=r"decoded is missing \['images.npy', 'masks.npy', 'index.csv'\]"
    ):
        dataset.load()

    dataset.save(_cache(["a", "b"], ["train", "val"]))
    (folder / "index.csv").write_text("id,split\na,train\nb,val\nc,val\n")
    with pytest.raises(DatasetError, match=r"decoded is corrupt .*3 ids, 3 splits, 2 images"):
        dataset.load()

    dataset.save(_cache(["a", "b"], ["train", "val"]))
    images = folder / "images.npy"
    images.write_bytes(images.read_bytes()[:-50])
    with pytest.raises(DatasetError, match="decoded is corrupt"):
        dataset.load()
