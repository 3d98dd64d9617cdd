from __future__ import annotations

from pathlib import Path

import pytest

from ssformer_repro.polyps.layouts import (
    LAYOUTS,
    DatasetLayoutError,
    SamplePair,
    discover_pairs,
)
from tests.polyps.conftest import write_pair


def test_kvasir_layout_pairs_same_names_and_ignores_other_files(tmp_path: Path) -> None:
    for stem in ("cju2", "cju1"):
        write_pair(tmp_path, "images", "masks", f"{stem}.jpg")
    (tmp_path / "kavsir_bboxes.json").write_text("{}")
    (tmp_path / "images" / "Thumbs.db").write_bytes(b"\0")
    (tmp_path / "images" / ".DS_Store").write_bytes(b"\0")
    (tmp_path / "masks" / "._cju1.jpg").write_bytes(b"\0")  # macOS resource fork

    pairs = discover_pairs("kvasir", tmp_path)

    assert pairs == [
        SamplePair("cju1", f"{tmp_path}/images/cju1.jpg", f"{tmp_path}/masks/cju1.jpg", "all"),
        SamplePair("cju2", f"{tmp_path}/images/cju2.jpg", f"{tmp_path}/masks/cju2.jpg", "all"),
    ]


def test_relative_root_gives_relative_posix_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_pair(tmp_path / "raw" / "kvasir", "images", "masks", "a.jpg")
    monkeypatch.chdir(tmp_path)
    [pair] = discover_pairs("kvasir", "raw/kvasir")
    assert (pair.image_path, pair.mask_path) == (
        "raw/kvasir/images/a.jpg",
        "raw/kvasir/masks/a.jpg",
    )


@pytest.mark.parametrize(
    ("images", "masks", "suffix"),
    [
        ("Original", "Ground Truth", ".tif"),
        ("PNG/Original", "PNG/Ground Truth", ".png"),
        ("TIF/Original", "TIF/Ground Truth", ".tif"),
    ],
)
def test_clinicdb_layout_and_its_repackagings(
    tmp_path: Path, images: str, masks: str, suffix: str
) -> None:
    for number in (1, 2, 10):
        write_pair(tmp_path, images, masks, f"{number}{suffix}")

    pairs = discover_pairs("clinicdb", tmp_path)

    assert [pair.id for pair in pairs] == ["1", "10", "2"]
    assert pairs[0].mask_path == f"{tmp_path}/{masks}/1{suffix}"


def test_clinicdb_without_frames_folder_says_what_is_expected(tmp_path: Path) -> None:
    (tmp_path / "something").mkdir()
    with pytest.raises(DatasetLayoutError, match=r"Original.*polyp\.grand-challenge\.org"):
        discover_pairs("clinicdb", tmp_path)


def test_pranet_layout_prefixes_test_ids_with_their_test_set(tmp_path: Path) -> None:
    write_pair(tmp_path, "TrainDataset/images", "TrainDataset/masks", "a.png")
    write_pair(tmp_path, "TrainDataset/images", "TrainDataset/masks", "b.png")
    for test_set in ("CVC-300", "Kvasir"):
        base = f"TestDataset/{test_set}"
        write_pair(tmp_path, f"{base}/images", f"{base}/masks", "a.png")

    pairs = discover_pairs("pranet", tmp_path)

    assert [(pair.id, pair.subset) for pair in pairs] == [
        ("CVC-300/a", "CVC-300"),
        ("Kvasir/a", "Kvasir"),
        ("a", "train"),
        ("b", "train"),
    ]
    assert pairs[0].image_path == f"{tmp_path}/TestDataset/CVC-300/images/a.png"


def test_pranet_reports_missing_test_sets_and_train_folders_together(tmp_path: Path) -> None:
    (tmp_path / "TrainDataset" / "images").mkdir(parents=True)
    with pytest.raises(DatasetLayoutError) as error:
        discover_pairs("pranet", tmp_path)
    message = str(error.value)
    assert "TestDataset" in message
    assert f"{tmp_path / 'TrainDataset' / 'masks'}: expected folder is missing" in message
    assert "PraNet" in message


def test_pranet_test_set_that_is_empty_or_lacks_its_masks_is_named(tmp_path: Path) -> None:
    write_pair(tmp_path, "TrainDataset/images", "TrainDataset/masks", "t.png")
    write_pair(tmp_path, "TestDataset/Kvasir/images", "TestDataset/Kvasir/masks", "k.png")
    (tmp_path / "TestDataset/CVC-300/images").mkdir(parents=True)
    (tmp_path / "TestDataset/CVC-300/masks").mkdir(parents=True)
    (tmp_path / "TestDataset/ETIS-LaribPolypDB/images").mkdir(parents=True)
    with pytest.raises(DatasetLayoutError) as error:
        discover_pairs("pranet", tmp_path)
    message = str(error.value)
    assert f"{tmp_path}/TestDataset/CVC-300/images: no image files found" in message
    assert f"{tmp_path}/TestDataset/ETIS-LaribPolypDB/masks: expected folder is missing" in message
    assert (
        "Kvasir" not in message.split("PraNet benchmark", maxsplit=1)[0]
    )  # the good set is not blamed


def test_folder_layout_matches_any_format_by_stem_including_unicode_and_spaces(
    tmp_path: Path,
) -> None:
    write_pair(tmp_path, "images", "masks", "a.png", "a.tif")
    write_pair(tmp_path, "images", "masks", "b.bmp", "b.png")
    write_pair(tmp_path, "images", "masks", "polyp 3 é.jpeg", "polyp 3 é.png")
    write_pair(tmp_path, "images", "masks", "UPPER.JPG", "UPPER.TIFF")

    pairs = discover_pairs("folder", tmp_path)

    assert [pair.id for pair in pairs] == ["UPPER", "a", "b", "polyp 3 é"]
    assert pairs[3].mask_path == f"{tmp_path}/masks/polyp 3 é.png"
    assert all(Path(pair.image_path).is_file() for pair in pairs)


def test_unknown_layout_lists_valid_names(tmp_path: Path) -> None:
    with pytest.raises(
        DatasetLayoutError, match="valid: \\['clinicdb', 'folder', 'kvasir', 'pranet'\\]"
    ):
        discover_pairs("kvasir-seg", tmp_path)
    assert sorted(LAYOUTS) == ["clinicdb", "folder", "kvasir", "pranet"]


def test_missing_root_says_where_to_download_and_unpack(tmp_path: Path) -> None:
    root = tmp_path / "kvasir"
    with pytest.raises(DatasetLayoutError) as error:
        discover_pairs("kvasir", root)
    message = str(error.value)
    assert "https://datasets.simula.no/downloads/kvasir-seg.zip" in message
    assert f"{root} holds images/ and masks/" in message


def test_missing_masks_folder_is_named(tmp_path: Path) -> None:
    write_pair(tmp_path, "images", "masks", "a.jpg")
    (tmp_path / "masks" / "a.jpg").unlink()
    (tmp_path / "masks").rmdir()
    with pytest.raises(DatasetLayoutError, match=r"masks: expected folder is missing"):
        discover_pairs("kvasir", tmp_path)


def test_unmatched_and_duplicate_files_are_all_reported_at_once(tmp_path: Path) -> None:
    write_pair(tmp_path, "images", "masks", "good.jpg")
    write_pair(tmp_path, "images", "masks", "twin.jpg")
    write_pair(tmp_path, "images", "masks", "twin.png", "twin.jpg")
    write_pair(tmp_path, "images", "masks", "lonely image.jpg")
    write_pair(tmp_path, "images", "masks", "orphan.jpg")
    (tmp_path / "masks" / "lonely image.jpg").unlink()
    (tmp_path / "images" / "orphan.jpg").unlink()

    with pytest.raises(DatasetLayoutError) as error:
        discover_pairs("folder", tmp_path)

    message = str(error.value)
    assert "3 problems" in message
    assert "images/lonely image.jpg: image has no mask" in message
    assert "masks/orphan.jpg: mask has no image" in message
    assert "images/twin.png: duplicate id 'twin', also used by twin.jpg" in message


def test_empty_images_folder_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    with pytest.raises(DatasetLayoutError, match="images: no image files found"):
        discover_pairs("kvasir", tmp_path)
