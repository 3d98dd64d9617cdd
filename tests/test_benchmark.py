"""The benchmark: a tiny end-to-end run that writes its JSON and Markdown, and its pure parts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch
from PIL import Image
from ssformer_repro.benchmark.kedro_overhead import (
    kedro_against_plain,
    overhead_summary,
    run_command,
    trained_runs,
)
from ssformer_repro.project_copy import copy_project

from ssformer_repro.benchmark.__main__ import main
from ssformer_repro.benchmark.common import one_epoch
from ssformer_repro.benchmark.data import keep_up
from ssformer_repro.benchmark.estimate import GridDataset, StudyGrid, estimate_grid
from ssformer_repro.benchmark.reference import official_augment, official_dice_bce_loss
from ssformer_repro.benchmark.train import speedups

TINY_RUN = [
    "--device=cpu",
    "--size=32",
    "--backbones=mit_b0",
    "--heads=sed",
    "--steps=2",
    "--warmup=1",
    "--repeats=2",
    "--batch-size=2",
    "--workers=0,1",
    "--train-workers=0",
    "--data-images=8",
    "--epoch-images=8",
    "--frame-size=64,96",
    "--sections=train,data,eval",  # the kedro section starts several kedro processes: too slow
    "--grid-backbones=mit_b0",
]


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Torch with one thread: two threads crawl when other processes share the two cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("benchmark")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main([*TINY_RUN, f"--output={output}"]) == 0
    finally:
        torch.set_num_threads(threads)
    return output


def test_tiny_run_writes_json_with_every_section(tiny_results: Path) -> None:
    results = json.loads((tiny_results / "benchmark.json").read_text())
    assert {"command", "machine", "settings", "train", "data", "eval", "kedro", "estimate"} <= set(
        results
    )
    assert results["kedro"] is None  # not asked for
    assert {"cpu_model", "cpu_cores", "torch", "device_name"} <= set(results["machine"])
    assert results["settings"]["size"] == 32

    train_rows = results["train"]["rows"]
    assert {(row["loop"], row["mode"]) for row in train_rows} == {
        ("ours", "compute"),
        ("ours", "end_to_end"),
        ("reference", "compute"),
        ("reference", "end_to_end"),
    }
    for row in train_rows:
        assert row["images_per_second"]["mean"] > 0
        assert len(row["images_per_second"]["values"]) == 2
        assert row["tflops"]["mean"] == pytest.approx(
            row["images_per_second"]["mean"] * 3 * row["forward_gflops"] / 1e3
        )
    assert {ratio["mode"] for ratio in results["train"]["speedups"]} == {"compute", "end_to_end"}

    data = results["data"]
    assert {(row["data_path"], row["workers"]) for row in data["rows"]} == {
        (path, workers)
        for path in ("official_pil_files", "manifest_files", "decoded_cache")
        for workers in (0, 1)
    }
    assert len(data["keep_up"]["data_paths"]) == 6

    (evaluation,) = results["eval"]["rows"]
    assert evaluation["images"] == 8 and evaluation["precision"] == "fp32"

    estimates = results["estimate"]["estimates"]
    assert len(estimates) == 4
    assert {(model["backbone"], model["head"]) for model in estimates[0]["models"]} == {
        ("mit_b0", "pld"),
        ("mit_b0", "pld_linear"),
        ("mit_b0", "sed"),
    }


def test_tiny_run_writes_markdown_tables(tiny_results: Path) -> None:
    markdown = (tiny_results / "benchmark.md").read_text()
    for heading in (
        "## Training throughput",
        "## Data path",
        "## Evaluation throughput",
        "## Estimated wall time of the full grid",
    ):
        assert heading in markdown
    assert "## Kedro overhead" not in markdown
    assert "python -m ssformer_repro.benchmark --device=cpu" in markdown
    assert "| decoded_cache" in markdown


def test_unknown_section_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main(["--sections=train,gpu", f"--output={tmp_path}"])
    assert "--sections must be among train, data, eval, kedro" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main(["--device=cuda", f"--output={tmp_path}"])
    assert "CUDA is not available" in capsys.readouterr().err


def test_official_augment_gives_normalised_image_and_soft_mask(one_thread: None) -> None:
    np.random.seed(0)
    frame = Image.fromarray(np.full((70, 90, 3), 128, np.uint8))
    mask = np.zeros((70, 90), np.uint8)
    mask[20:50, 30:60] = 255
    for _ in range(5):
        image, gt = official_augment(frame, Image.fromarray(mask), size=32)
        assert image.shape == (3, 32, 32) and image.dtype == torch.float32
        assert gt.shape == (1, 32, 32)
        assert 0 <= gt.min() and gt.max() <= 1


def test_official_loss_applies_a_second_sigmoid() -> None:
    probabilities = torch.full((1, 1, 2, 2), 0.9)
    masks = torch.ones(1, 1, 2, 2)
    second = torch.sigmoid(torch.tensor(0.9))
    bce = torch.nn.functional.softplus(-torch.tensor(0.9))  # BCE-with-logits of 0.9 against 1
    dice = 1 - (2 * second + 1) / (second + 2)
    assert official_dice_bce_loss(probabilities, masks) == pytest.approx(float(bce + dice))


def _train_row(loop: str, mode: str, head: str, images_per_second: float, gflops: float) -> dict:
    return {
        "backbone": "mit_b0",
        "head": head,
        "loop": loop,
        "mode": mode,
        "size": 64,
        "precision": "fp32",
        "forward_gflops": gflops,
        "images_per_second": {"mean": images_per_second, "std": 0.0},
    }


def test_estimate_scales_the_measured_flop_rate_to_every_grid_model() -> None:
    grid = StudyGrid(
        backbones=("mit_b0", "mit_b1"),
        heads=("sed", "pld"),
        datasets=(GridDataset("a", train_images=10, val_images=2),),
        epochs=5,
        size=352,
    )
    rows = [_train_row("ours", "compute", "sed", images_per_second=100.0, gflops=1.0)]
    gflops = {("mit_b0", "sed"): 2.0, ("mit_b1", "sed"): 4.0, ("mit_b1", "pld"): 8.0}
    (estimate,) = estimate_grid(rows, gflops, grid)
    rate = 100.0 * 3 * 1.0e9  # achieved FLOP/s of the measured step
    passes = (3 * 10 + 2) * 5
    hours = {(model["backbone"], model["head"]): model["hours"] for model in estimate["models"]}
    assert hours[("mit_b0", "sed")] == pytest.approx(2.0e9 * passes / rate / 3600)
    assert hours[("mit_b1", "pld")] == pytest.approx(8.0e9 * passes / rate / 3600)
    assert estimate["total_hours"] == pytest.approx(sum(hours.values()))
    assert {model["rate_from"] for model in estimate["models"]} == {
        "same head",
        "all measured models",
    }


def test_speedups_and_keep_up_compare_the_right_rows() -> None:
    rows = [
        _train_row("ours", "compute", "sed", 30.0, 1.0),
        _train_row("reference", "compute", "sed", 10.0, 1.0),
        _train_row("ours", "end_to_end", "sed", 20.0, 1.0),
    ]
    assert speedups(rows) == [
        {"backbone": "mit_b0", "head": "sed", "mode": "compute", "speedup": 3.0}
    ]
    data_rows = [
        {"data_path": "decoded_cache", "workers": 0, "images_per_second": {"mean": 45.0}},
        {"data_path": "manifest_files", "workers": 0, "images_per_second": {"mean": 15.0}},
    ]
    verdict = keep_up(data_rows, rows)
    assert verdict["training_images_per_second"] == 30.0
    assert [path["keeps_up"] for path in verdict["data_paths"]] == [True, False]
    assert verdict["data_paths"][0]["supply_over_demand"] == pytest.approx(1.5)
    assert keep_up(data_rows, []) is None


def test_kedro_share_is_the_wall_time_outside_nodes_and_dataset_io(tmp_path: Path) -> None:
    run_times = {
        "pipeline_seconds": 39.0,
        "nodes_seconds": 36.0,
        "dataset_seconds": 2.0,
        "other_seconds": 1.0,
        "node_seconds": {"a": 36.0},
    }
    summary = overhead_summary(wall_seconds=40.0, run_times=run_times, loop_seconds=30.0)
    assert summary["other_node_seconds"] == 6.0
    assert summary["outside_nodes_seconds"] == 2.0 and summary[
        "outside_nodes_percent"
    ] == pytest.approx(5.0)
    assert summary["startup_and_exit_seconds"] == 1.0 and summary["between_nodes_seconds"] == 1.0
    assert summary["outside_loop_percent"] == pytest.approx(25.0)

    one_run = run_command("synth_kvasir.mit_b0.sed", 15, tmp_path, env="demo")
    assert one_run == [
        "run",
        "--pipelines=training",
        "--namespaces=synth_kvasir.mit_b0.sed",
        "--env=demo",
        f"--params=training.epochs=15,paths.models={tmp_path}",
    ]
    against_plain = kedro_against_plain(
        {"wall_seconds": 40.0, "training_loop_seconds": 30.0},
        {"wall_seconds": 41.0, "training_loop_seconds": 33.0},  # slower loops, by chance
    )
    assert against_plain["kedro_adds_seconds"] == -1.0
    assert against_plain["kedro_adds_outside_loops_seconds"] == 2.0
    assert against_plain["kedro_adds_outside_loops_percent"] == pytest.approx(5.0)

    whole_demo = run_command("reproduce", 15, tmp_path, env="demo")
    assert whole_demo[:3] == ["run", "--pipelines=reproduce", "--env=demo"]


def test_kedro_section_times_a_run_and_its_baseline(tmp_path: Path) -> None:
    output = tmp_path / "out"
    arguments = [
        "--device=cpu",
        "--sections=kedro",
        "--kedro-run=synth_kvasir.mit_b0.sed",
        "--kedro-epochs=1",
        "--kedro-baseline-params=training.checkpoint_every_seconds=0",
        "--threads=1",
        f"--project={Path(__file__).resolve().parents[1]}",
        f"--output={output}",
    ]
    assert main(arguments) == 0

    kedro = json.loads((output / "benchmark.json").read_text())["kedro"]
    plain = kedro["plain"]
    assert plain["command"].startswith("python -m ssformer_repro.benchmark.plain_run run")
    assert 0 < plain["training_loop_seconds"] < plain["wall_seconds"]
    assert plain["kedro_adds_seconds"] == pytest.approx(
        kedro["wall_seconds"] - plain["wall_seconds"]
    )
    for timed in (kedro, kedro["baseline"]):
        assert timed["runs"] == 1 and timed["epochs"] == 1
        assert 0 < timed["training_loop_seconds"] < timed["wall_seconds"]
        parts = (
            "training_loop_seconds",
            "other_node_seconds",
            "dataset_seconds",
            "outside_nodes_seconds",
        )
        assert sum(timed[part] for part in parts) == pytest.approx(timed["wall_seconds"])
        assert timed["startup_and_exit_seconds"] > 0
    assert kedro["baseline"]["command"].endswith(",training.checkpoint_every_seconds=0")
    assert kedro["data_processing_seconds"] > 0
    report = (output / "benchmark.md").read_text()
    assert "plain loop without Kedro" in report and "Baseline, timed first" in report


def test_kedro_run_times_of_the_demo_are_stored_with_its_mlflow_run(
    reproduced: Path, tmp_path: Path
) -> None:
    # Other tests may run kedro in the shared demo project later: take the reproduce run's times.
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{reproduced / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("ssformer-repro")
    (parent,) = client.search_runs(
        [experiment.experiment_id], filter_string="tags.`kedro.pipelines` = 'reproduce'"
    )
    times = json.loads(
        Path(
            client.download_artifacts(parent.info.run_id, "run_times.json", str(tmp_path))
        ).read_text()
    )
    train_nodes = [name for name in times["node_seconds"] if name.endswith(".train")]
    assert len(train_nodes) == 6  # the demo grid
    assert 0 < times["nodes_seconds"] < times["pipeline_seconds"]
    assert times["nodes_seconds"] == pytest.approx(sum(times["node_seconds"].values()))
    assert times["dataset_seconds"] > 0
    runs = trained_runs(reproduced / "data/demo/06_models")
    assert {"dataset": "synth_kvasir", "backbone": "mit_b0", "head": "pld_linear"} in runs
    assert len(runs) == 6


def test_copy_project_copies_code_and_conf_but_no_data(tmp_path: Path) -> None:
    project = Path(__file__).resolve().parents[1]
    copy = copy_project(project, tmp_path / "copy")
    assert (copy / "pyproject.toml").is_file() and (copy / "conf" / "base").is_dir()
    assert (copy / "conf" / "local").is_dir() and not any((copy / "conf" / "local").iterdir())
    assert (copy / "data" / "01_raw").is_dir() and not any((copy / "data" / "01_raw").iterdir())
    assert not list(copy.rglob("__pycache__"))
    with pytest.raises(FileNotFoundError, match="--project"):
        copy_project(tmp_path / "copy" / "conf", tmp_path / "other")


def test_one_epoch_repeats_the_frames_to_the_epoch_length() -> None:
    frames = ["a", "b", "c"]
    epoch = one_epoch(frames, 7)
    assert [epoch[index] for index in range(len(epoch))] == ["a", "b", "c", "a", "b", "c", "a"]
