"""Model sizes against the report and the official PLD (docs/reference.md §1.5)."""

import math

import pytest
import segmentation_models_pytorch.encoders.mix_transformer as smp_mit
import torch
from torch import nn

from ssformer_repro.models import Segmenter, available_heads, build_model, sizes
from ssformer_repro.models.backbones import BACKBONES, build_backbone
from ssformer_repro.models.heads import build_head
from ssformer_repro.models.sizes import (
    REFERENCE_SIZES,
    count_parameters,
    forward_gflops,
    forward_gflops_on_meta,
    model_size_table,
    reference_sizes,
    state_dict_megabytes,
)

MIT = [f"mit_b{i}" for i in range(6)]
TOLERANCE = 0.005  # 0.5 %


@pytest.fixture
def fast_mit_init(monkeypatch):
    """smp's MiT runs timm's slow trunc_normal_ on every Linear several times; sizes don't care."""
    monkeypatch.setattr(
        smp_mit, "trunc_normal_", lambda tensor, std: nn.init.normal_(tensor, 0, std)
    )


def test_state_dict_megabytes_is_the_saved_file_size(tmp_path):
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8))
    # torch.save names the zip's records after the file's stem, and "archive" when it has none
    torch.save(model.state_dict(), tmp_path / "archive.pth")
    assert state_dict_megabytes(model) == (tmp_path / "archive.pth").stat().st_size / 1e6


def test_count_parameters_excludes_buffers():
    assert count_parameters(nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))) == 16 + 8


def test_forward_gflops_counts_two_flops_per_multiply_accumulate():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU()).train()
    assert forward_gflops(model, size=32) == pytest.approx(2 * 8 * 3 * 9 * 32 * 32 / 1e9)
    assert model.training  # mode restored


def test_reference_sizes_cover_mit_times_every_head():
    table = reference_sizes()
    assert len(table) == len(REFERENCE_SIZES) == 18
    assert set(zip(table["backbone"], table["head"], strict=True)) == {
        (backbone, head) for backbone in MIT for head in available_heads()
    }


@pytest.mark.usefixtures("fast_mit_init")
def test_mit_model_sizes_match_the_references():
    """sed and pld_linear within 0.5 % of the report's "Size" column, pld of the official PLD's."""
    references = reference_sizes().set_index(["backbone", "head"])["megabytes"]
    for backbone_name in MIT:
        spec = BACKBONES[backbone_name]
        backbone = build_backbone(backbone_name)
        for head in available_heads():
            model = Segmenter(backbone, build_head(head, spec.channels, spec.embed_dim))
            reference = references[(backbone_name, head)]
            assert state_dict_megabytes(model) == pytest.approx(reference, rel=TOLERANCE), (
                backbone_name,
                head,
            )


def test_model_size_table_joins_references():
    models = [("mit_b0", "sed"), ("mit_b0", "pld"), ("pvt_v2_b0", "sed"), ("pvt_v2_b0", "pld")]
    table = model_size_table([*models, ("mit_b0", "sed")], size=64)  # each model once
    assert list(table.columns) == [
        "backbone",
        "head",
        "params",
        "megabytes",
        "gflops",
        "reference_megabytes",
        "reference_source",
        "relative_difference",
    ]
    assert list(zip(table["backbone"], table["head"], strict=True)) == models
    mit_rows = table[table["backbone"] == "mit_b0"]
    assert (mit_rows["relative_difference"].abs() < TOLERANCE).all()
    assert math.isnan(table["reference_megabytes"].iloc[2])
    assert (table["gflops"] > 0).all()


@pytest.mark.parametrize(("head", "reference_gflops"), [("sed", 6.8), ("pld", 22.9)])
def test_mit_b0_gflops_at_352_match_reference_section_7(head, reference_gflops):
    spec = BACKBONES["mit_b0"]
    model = Segmenter(build_backbone("mit_b0"), build_head(head, spec.channels, spec.embed_dim))
    assert forward_gflops(model, size=352) == pytest.approx(reference_gflops, abs=0.05)


@pytest.mark.parametrize("backbone", ["mit_b0", "pvt_v2_b0"])
def test_counts_on_meta_equal_those_of_the_built_model(backbone):
    """The table counts on meta; a built model (initialised, run on an image) gives the same."""
    heads = available_heads()
    table = model_size_table([(backbone, head) for head in heads], size=64).set_index("head")
    counted = forward_gflops_on_meta([backbone], heads, 64)
    for head in heads:
        torch.manual_seed(0)
        model = build_model(backbone, head)
        assert table.loc[head, "params"] == count_parameters(model)
        assert table.loc[head, "megabytes"] == state_dict_megabytes(model)  # to the byte
        assert counted[(backbone, head)] == pytest.approx(forward_gflops(model, 64))
        assert table.loc[head, "gflops"] == counted[(backbone, head)]


def test_an_unchanged_table_is_read_from_its_record(tmp_path, monkeypatch):
    record = tmp_path / "model_sizes_record.json"
    models = [("mit_b0", "sed"), ("pvt_v2_b0", "pld")]  # with and without a reference size
    counted = model_size_table(models, size=64, record=record)

    def no_counting(*args):
        raise AssertionError("an unchanged table is counted again")

    monkeypatch.setattr(sizes, "_counted_table", no_counting)
    again = model_size_table(models, size=64, record=record)
    assert again.to_csv(index=False) == counted.to_csv(index=False)  # the same CSV, to the byte
    with pytest.raises(AssertionError, match="counted again"):
        model_size_table(models, size=32, record=record)  # another size: counted
    with pytest.raises(AssertionError, match="counted again"):
        model_size_table(models[:1], size=64, record=record)  # other models: counted
