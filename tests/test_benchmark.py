"""The benchmark: a tiny run of every section (predict on its own, where ONNX Runtime is
installed), the grid estimate read from a configuration, the CUDA out-of-memory fallback, usage
errors, and the pure parts."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from ssformer_repro.benchmark import common, reference
from ssformer_repro.benchmark.__main__ import build_parser, main
from ssformer_repro.benchmark.attention import break_even_steps
from ssformer_repro.benchmark.estimate import configured_grid, estimate
from ssformer_repro.benchmark.runner import SECTIONS, render_markdown, run_benchmark
from ssformer_repro.benchmark.settings import SECTION_NAMES, BenchmarkSettings

TINY = dict(
    device="cpu",
    size=32,
    backbones=("mit_b0",),
    heads=("sed",),
    steps=1,
    warmup=1,
    repeats=2,
    batch_size=2,
    workers=(0,),
    data_images=4,
    epoch_images=4,
    frame_size=(64, 80),
)
TINY_ARGS = [
    "--device=cpu",
    "--size=32",
    "--backbones=mit_b0",
    "--heads=sed",
    "--steps=1",
    "--warmup=1",
    "--repeats=2",
    "--batch-size=2",
    "--workers=0,1",
    "--data-images=4",
    "--epoch-images=4",
    "--frame-size=64,80",
    "--compile-steps=0",
]


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Kedro configuration with a small grid: kvasir with a split manifest (10 train, 2 val,
    3 test), clinicdb without one (published sizes), `mystery` with neither; env `long` trains
    longer."""
    root = tmp_path_factory.mktemp("project")
    _write(root / "conf/base/globals.yml", "data_root: data\n")
    _write(
        root / "conf/base/parameters.yml",
        "reproduce:\n  datasets: [kvasir, clinicdb, mystery]\n  backbones: [mit_b0]\n"
        "  heads: [sed, pld]\n  seeds: [42]\ntraining:\n  epochs: 2\naugmentation:\n  image_size: 64\n",
    )
    _write(root / "conf/long/parameters.yml", "training:\n  epochs: 5\n")
    (root / "conf/local").mkdir()
    splits = ["train"] * 10 + ["val"] * 2 + ["test"] * 3
    manifest = root / "data/05_model_input/kvasir_split.csv"
    manifest.parent.mkdir(parents=True)
    pd.DataFrame({"id": range(len(splits)), "split": splits}).to_csv(manifest, index=False)
    return root


@pytest.fixture(scope="module")
def tiny(project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny run of every section through the command line; its output folder."""
    output = tmp_path_factory.mktemp("benchmark")
    sections = "--sections=train,data,eval,attention"
    assert main([*TINY_ARGS, sections, f"--project={project}", f"--output={output}"]) == 0
    return output


def test_tiny_run_measures_every_section(tiny: Path) -> None:
    results = json.loads((tiny / "benchmark.json").read_text())
    assert {"cpu_model", "cpu_cores", "torch", "device_name"} <= set(results["machine"])
    assert results["settings"]["size"] == 32 and results["settings"]["train_workers"] == 0

    train = results["train"]["rows"]
    assert [(row["loop"], row["mode"]) for row in train] == [
        ("ours", "compute"),
        ("reference", "compute"),
        ("ours", "end_to_end"),
        ("reference", "end_to_end"),
    ]
    for row in train:
        rate = row["images_per_second"]
        assert rate["mean"] > 0 and len(rate["values"]) == 2 and row["batch_size"] == 2
        assert row["tflops"] == pytest.approx(rate["mean"] * 3 * row["forward_gflops"] / 1e3)
    ours, reference_row = train[0], train[1]
    speedup = ours["images_per_second"]["mean"] / reference_row["images_per_second"]["mean"]
    assert ours["speedup"] == pytest.approx(speedup) and reference_row["speedup"] is None

    data = results["data"]
    assert [(row["data_path"], row["workers"]) for row in data["rows"]] == [
        (path, workers)
        for path in ("official_pil_files", "manifest_files", "decoded_cache")
        for workers in (0, 1)
    ]
    fastest = max(row["images_per_second"]["mean"] for row in train[::4])
    assert data["demand"]["images_per_second"] == pytest.approx(fastest)
    for row in data["rows"]:
        assert row["supply_over_demand"] == pytest.approx(
            row["images_per_second"]["mean"] / fastest
        )

    (evaluation,) = results["eval"]["rows"]
    assert evaluation["images"] == 4 and evaluation["precision"] == "fp32"
    assert evaluation["predict_images_per_second"]["mean"] > 0
    without, boundary = (
        evaluation[key] for key in ("score_images_per_second", "score_boundary_images_per_second")
    )
    assert evaluation["scoring_slowdown"] == pytest.approx(without / boundary)
    predict = 4 / evaluation["predict_images_per_second"]["mean"]
    assert evaluation["evaluation_slowdown"] == pytest.approx(
        (predict + 4 / boundary) / (predict + 4 / without)
    )
    (attention,) = results["attention"]["rows"]
    ratio = attention["sdpa"]["mean"] / attention["manual"]["mean"]
    assert attention["sdpa_over_manual"] == pytest.approx(ratio)
    assert results["attention"]["compile"] is None  # --compile-steps=0

    grid = results["train"]["estimate"]["grid"]
    assert grid["left_out"] == ["mystery"] and grid["epochs"] == 2 and grid["size"] == 64
    assert [(m["backbone"], m["head"], m["runs"]) for m in grid["models"]] == [
        ("mit_b0", "sed", 2),
        ("mit_b0", "pld", 2),
    ]


def test_tiny_run_writes_the_markdown_report(tiny: Path) -> None:
    markdown = (tiny / "benchmark.md").read_text()
    ran = [section.title for name, section in SECTIONS.items() if name != "predict"]
    for title in [*ran, "Grid estimate"]:
        assert f"## {title}" in markdown
    assert "## Prediction throughput" not in markdown
    assert "python -m ssformer_repro.benchmark --device=cpu --size=32" in markdown
    assert "| decoded_cache" in markdown and "kvasir 10 + 2" in markdown


def test_predict_section_times_pytorch_and_onnx_runtime() -> None:
    pytest.importorskip("onnxruntime")
    settings = BenchmarkSettings(**TINY | {"sections": ("predict",), "warmup": 0, "repeats": 1})
    results = run_benchmark(settings, "test")
    rows = results["predict"]["rows"]
    assert [row["engine"] for row in rows] == [
        "PyTorch fp32",
        "ONNX Runtime (CPUExecutionProvider)",
    ]
    for row in rows:
        assert (row["backbone"], row["head"], row["size"], row["batch_size"]) == (
            "mit_b0",
            "sed",
            32,
            2,
        )
        assert row["images_per_second"]["mean"] > 0 and len(row["images_per_second"]["values"]) == 1
    markdown = render_markdown(results)
    assert (
        "## Prediction throughput" in markdown
        and "| ONNX Runtime (CPUExecutionProvider) |" in markdown
    )
    assert results["train"] is None and results["workspace"] is None  # no frames written


def test_the_grid_comes_from_the_configuration(project: Path) -> None:
    grid = configured_grid(project, "long")  # env `long`: 5 epochs
    manifest = str(project / "data/05_model_input/kvasir_split.csv")
    assert grid["datasets"]["kvasir"] == {"train": 10, "val": 2, "source": manifest}
    assert grid["datasets"]["clinicdb"]["source"] == "published split"
    sed = grid["models"][0]
    assert sed["head"] == "sed" and sed["passes"] == 5 * ((3 * 10 + 2) + (3 * 490 + 61))

    # Our sed step, measured at 100 images/s of a 1-GFLOP forward pass: 0.3 TFLOP/s.
    rows = [{"loop": "ours", "mode": "compute", "head": "sed", "tflops": 100.0 * 3 * 1.0 / 1e3}]
    grid["models"][0]["forward_gflops"], grid["models"][1]["forward_gflops"] = 2.0, 8.0
    (estimated,) = estimate(rows, grid)["estimates"]
    rate = 100.0 * 3 * 1e9  # FLOP/s of the measured sed step, also used for pld (not measured)
    sed, pld = grid["models"]
    hours = {
        "mit_b0-sed": 2.0e9 * sed["passes"] / rate / 3600,
        "mit_b0-pld": 8.0e9 * pld["passes"] / rate / 3600,
    }
    assert estimated["model_hours"] == pytest.approx(hours)
    assert estimated["hours"] == pytest.approx(sum(hours.values())) and estimated["heads"] == [
        "sed"
    ]


def test_cuda_out_of_memory_halves_the_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    batches = []

    def measure(settings: BenchmarkSettings) -> list[dict]:
        batches.append(settings.batch_size)
        if settings.batch_size > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (fake)")
        return [{"batch_size": settings.batch_size}]

    settings = BenchmarkSettings(**TINY | {"batch_size": 8, "data_images": 8, "epoch_images": 8})
    assert common.halving_batch(measure, settings) == [{"batch_size": 2}] and batches == [8, 4, 2]

    def always_out_of_memory(settings: BenchmarkSettings) -> None:
        batches.append(settings.batch_size)
        raise torch.OutOfMemoryError("CUDA out of memory (fake)")

    batches.clear()
    with pytest.raises(torch.OutOfMemoryError):
        common.halving_batch(always_out_of_memory, dataclasses.replace(settings, batch_size=4))
    assert batches == [4, 2, 1]

    # In the training section: the reference loop "runs out of memory" at batches above 1.
    train = reference.ReferenceTrainer.train

    def fake_oom(self: reference.ReferenceTrainer, batches: list) -> int:
        batches = list(batches)
        if batches and len(batches[0][0]) > 1:
            raise torch.OutOfMemoryError("CUDA out of memory (fake)")
        return train(self, batches)

    monkeypatch.setattr(reference.ReferenceTrainer, "train", fake_oom)
    settings = BenchmarkSettings(**TINY | {"sections": ("train",), "estimate": False})
    rows = run_benchmark(settings, "test")["train"]["rows"]
    assert [row["batch_size"] for row in rows] == [1, 1, 1, 1]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            ["--sections=train,gpu"],
            "--sections must be among train, data, eval, attention, predict",
        ),
        (["--size=100"], "--size must be a positive multiple of 32"),
        (["--frame-size=64"], "--frame-size must be min,max"),
        (["--heads=unet"], "--heads must be among"),
        (["--batch-size=16", "--data-images=8"], "--batch-size must be at most --data-images"),
        (["--steps=0"], "--steps and --repeats must be > 0"),
    ],
)
def test_bad_values_are_usage_errors(
    arguments: list[str], message: str, capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(SystemExit):
        main(["--device=cpu", *arguments])
    assert message in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_a_usage_error(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main(["--device=cuda"])
    assert "CUDA is not available" in capsys.readouterr().err


def test_every_setting_is_an_option_with_device_defaults() -> None:
    args = build_parser().parse_args(["--device=cpu", "--no-estimate", "--workers=0,2"])
    fields = [field.name for field in dataclasses.fields(BenchmarkSettings)]
    assert set(fields) <= set(vars(args))
    settings = BenchmarkSettings(**{name: getattr(args, name) for name in fields})
    assert (settings.batch_size, settings.steps, settings.train_workers) == (8, 5, 0)
    assert settings.workers == (0, 2) and settings.estimate is False
    assert settings.project == Path.cwd() and settings.sections is None
    assert [name for name, section in SECTIONS.items() if section.default] == [
        "train",
        "data",
        "eval",
    ]


def test_the_settings_name_the_sections_of_the_runner() -> None:
    assert tuple(SECTIONS) == SECTION_NAMES  # settings.py checks --sections against the names


def test_batch_stream_cycles_through_epochs_of_full_batches() -> None:
    settings = BenchmarkSettings(**TINY | {"epoch_images": 5})
    take = common.batch_stream(list(range(3)), settings, workers=0)
    batches = take(4)  # epochs of 5 samples: 2 full batches each
    assert len(batches) == 4
    seen = [sorted(batch.tolist()) for batch in batches]
    assert all(len(batch) == 2 for batch in seen) and len(take(1)) == 1


def test_break_even_steps() -> None:
    assert break_even_steps(compile_seconds=10.0, saving_per_step=0.5) == 20.0
    assert break_even_steps(compile_seconds=10.0, saving_per_step=-0.1) is None


def test_official_augment_gives_normalised_image_and_soft_mask() -> None:
    np.random.seed(0)
    frame = Image.fromarray(np.full((70, 90, 3), 128, np.uint8))
    mask = np.zeros((70, 90), np.uint8)
    mask[20:50, 30:60] = 255
    for _ in range(5):
        image, gt = reference.official_augment(frame, Image.fromarray(mask), size=32)
        assert image.shape == (3, 32, 32) and image.dtype == torch.float32
        assert gt.shape == (1, 32, 32) and 0 <= gt.min() and gt.max() <= 1


def test_official_loss_applies_a_second_sigmoid() -> None:
    probabilities, masks = torch.full((1, 1, 2, 2), 0.9), torch.ones(1, 1, 2, 2)
    second = torch.sigmoid(torch.tensor(0.9))
    bce = torch.nn.functional.softplus(-torch.tensor(0.9))  # BCE-with-logits of 0.9 against 1
    dice = 1 - (2 * second + 1) / (second + 2)
    assert reference.official_dice_bce_loss(probabilities, masks) == pytest.approx(
        float(bce + dice)
    )
