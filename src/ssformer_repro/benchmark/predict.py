"""Prediction throughput on new frames, engine against engine on the same in-memory batch:
PyTorch fp32, PyTorch bf16 autocast (CUDA only) and the exported ONNX model under ONNX Runtime
(its CUDA provider where installed, else the CPU one). Compute only: the frames' decoding is the
data section's."""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

import torch

from ssformer_repro.benchmark.common import Run, images_per_second, precisions, repeated, table
from ssformer_repro.benchmark.settings import BenchmarkSettings
from ssformer_repro.evaluation.predict import flip_averaged_probabilities
from ssformer_repro.inference.export import ProbabilityModel, export_onnx, require_export_extra
from ssformer_repro.models import build_model
from ssformer_repro.training.parts import seed_everything

logger = logging.getLogger(__name__)


def measure(run: Run) -> dict[str, Any]:
    """Images/s of every model under each engine."""
    require_export_extra()
    return {"rows": run.per_model(measure_engines)}


def measure_engines(backbone: str, head: str, run: Run, settings: BenchmarkSettings) -> list:
    """Rows of images/s of one model, per engine, the engines taking turns on the same batch."""
    import onnxruntime

    seed_everything(settings.seed)
    model = ProbabilityModel(build_model(backbone, head)).eval()
    logger.info("Exporting %s-%s to ONNX at %d px.", backbone, head, settings.size)
    path = export_onnx(model, settings.size, run.scratch / f"{backbone}-{head}.onnx")
    cuda = [p for p in onnxruntime.get_available_providers() if settings.on_cuda and "CUDA" in p]
    provider = (cuda or ["CPUExecutionProvider"])[0]
    session = onnxruntime.InferenceSession(str(path), providers=[provider])
    images = torch.randn(settings.batch_size, 3, settings.size, settings.size)
    network, on_device = model.network.to(settings.device), images.to(settings.device)
    engines = {
        f"PyTorch {name}": partial(flip_averaged_probabilities, network, on_device, dtype)
        for name, dtype in precisions(settings).items()
    }
    engines[f"ONNX Runtime ({provider})"] = partial(session.run, None, {"images": images.numpy()})
    logger.info("Timing %s-%s under %s.", backbone, head, ", ".join(engines))
    runners = {name: repeated(forward, settings.batch_size) for name, forward in engines.items()}
    row = dict(backbone=backbone, head=head, size=settings.size, batch_size=settings.batch_size)
    rates = images_per_second(runners, settings)
    return [row | dict(engine=name, images_per_second=rate) for name, rate in rates.items()]


def markdown(result: dict[str, Any], results: dict[str, Any]) -> str:
    """One row per model and engine."""
    settings = results["settings"]
    return (
        "The same in-memory batch, probabilities out, engines taking turns "
        f"({settings['repeats']} timings of {settings['steps']} batches, mean ± std).\n\n"
        + table(result["rows"], "backbone, head, engine, size, batch_size, images_per_second")
    )
