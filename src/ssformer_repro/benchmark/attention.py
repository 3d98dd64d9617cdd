"""Section `attention` (on request): MiT attention, smp's manual code vs SDPA (the same weights),
in our training step of `<backbone> + sed` for each MiT backbone, the two taking turns; then
torch.compile of the first one's step: first step (compiling included), steady state over
--compile-steps, and the steps after which compiling pays back (--compile-steps 0: skipped)."""

from __future__ import annotations

import copy
import math
from functools import partial
from typing import Any

import torch

from ssformer_repro.benchmark.common import Run, halving_batch, images_per_second, table, timed
from ssformer_repro.benchmark.settings import BenchmarkSettings
from ssformer_repro.benchmark.train import study_loop
from ssformer_repro.models import build_model
from ssformer_repro.models.backbones import MIT_ATTENTION, build_backbone, get_backbone_spec
from ssformer_repro.models.heads import build_head
from ssformer_repro.models.segmenter import Segmenter
from ssformer_repro.training.parts import seed_everything

HEAD = "sed"


def measure(run: Run) -> dict[str, Any]:
    """Manual against SDPA for every MiT backbone, then torch.compile of the first one."""
    settings = run.settings
    mit = [name for name in settings.backbones if name.startswith("mit_")]  # smp's MiT sizes
    rows = [halving_batch(partial(measure_attention, name), settings) for name in mit]
    compiled = None
    if mit and settings.compile_steps:
        compiled = halving_batch(partial(measure_compile, mit[0]), settings)
    not_mit = sorted(set(settings.backbones) - set(mit))
    return {"rows": rows, "compile": compiled, "not_mit": not_mit}


def measure_attention(name: str, settings: BenchmarkSettings) -> dict[str, Any]:
    """Images/s of our training step with manual and with SDPA attention, for one MiT size."""
    seed_everything(settings.seed)
    spec, manual = get_backbone_spec(name), build_backbone(name, attention="manual")
    steps = {}
    for variant in ("manual", "sdpa"):  # the same weights
        backbone = copy.deepcopy(manual)
        MIT_ATTENTION[variant](backbone.encoder)
        model = Segmenter(backbone, build_head(HEAD, spec.channels, spec.embed_dim))
        steps[variant] = study_loop(model, "compute", settings, None)[0]
    rates = images_per_second(steps, settings)
    row = dict(backbone=name, size=settings.size, batch_size=settings.batch_size, **rates)
    return row | {"sdpa_over_manual": rates["sdpa"]["mean"] / rates["manual"]["mean"]}


def measure_compile(name: str, settings: BenchmarkSettings) -> dict[str, Any]:
    """Eager vs compiled training step of `<name> + sed` (SDPA): first step, steady state."""
    result: dict[str, Any] = dict(backbone=name, size=settings.size, batch_size=settings.batch_size)
    for mode in ("eager", "compiled"):
        seed_everything(settings.seed)
        torch._dynamo.reset()
        step, _ = study_loop(build_model(name, HEAD), "compute", settings, None, mode == "compiled")
        result[f"{mode}_first_step_s"] = timed(partial(step, 1), settings.device)[1]
        if settings.warmup:
            step(settings.warmup)
        seconds = timed(partial(step, settings.compile_steps), settings.device)[1]
        result[f"{mode}_step_s"] = seconds / settings.compile_steps
    saving = result["eager_step_s"] - result["compiled_step_s"]
    compiling = result["compiled_first_step_s"] - result["eager_first_step_s"]
    return result | {"break_even_steps": break_even_steps(compiling, saving)}


def break_even_steps(compile_seconds: float, saving_per_step: float) -> float | None:
    """Steps after which compiling has saved its compile time; None when it never does."""
    return compile_seconds / saving_per_step if saving_per_step > 0 else None


def markdown(result: dict[str, Any], results: dict[str, Any]) -> str:
    """The attention table and, when timed, the compile table."""
    settings, compiled = results["settings"], result["compile"]
    columns = "backbone, size, batch_size, manual:manual images/s, sdpa:SDPA images/s"
    text = (
        f"Training step of `<backbone> + {HEAD}` (loss, AdamW); mean ± std over "
        f"{settings['repeats']} alternating repeats of {settings['steps']} steps.\n\n"
        + table(result["rows"], f"{columns}, sdpa_over_manual:SDPA / manual")
    )
    if result["not_mit"]:
        text += f"\n\nNot MiT, so not timed: {', '.join(result['not_mit'])}."
    if compiled is None:
        return text
    times = [
        dict(mode=mode, first=compiled[f"{mode}_first_step_s"], step=compiled[f"{mode}_step_s"])
        for mode in ("eager", "compiled")
    ]
    steps = compiled["break_even_steps"]
    pays = "never pays back" if steps is None else f"pays back after {math.ceil(steps)} steps"
    return (
        f"{text}\n\ntorch.compile, training step of {compiled['backbone']} + {HEAD} (SDPA), "
        f"batch {compiled['batch_size']}, steady state over {settings['compile_steps']} steps:"
        f"\n\n{table(times, 'mode, first:first step s (incl. compile), step:steady step s')}\n\n"
        f"Compiling {pays} (compile time / steady-state saving per step)."
    )
