"""Model sizes: parameters, saved megabytes and forward GFLOPs, next to the published sizes.

The table counts them on the meta device (`OnMeta`): no weights are initialised and no image is
run, about a second for MiT-B0's three heads, 15 s for MiT-B0..B5's. It can keep what it
counted in a record (storage/records.py), so an unchanged table is read back, not recounted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd
import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils.flop_counter import FlopCounterMode

from ssformer_repro.models.backbones import build_backbone, get_backbone_spec
from ssformer_repro.models.heads import build_head
from ssformer_repro.models.segmenter import build_model
from ssformer_repro.storage.digests import package_digest
from ssformer_repro.storage.records import store_record, stored_record

TABLE_COLUMNS = (
    "backbone",
    "head",
    "params",
    "megabytes",
    "gflops",
    "reference_megabytes",
    "reference_source",
    "relative_difference",
)
# The libraries whose code the counts depend on, besides ours (a record of another version is
# counted again).
SIZE_LIBRARIES = ("torch", "segmentation-models-pytorch", "timm")
FACTORIES = {torch.empty, torch.zeros, torch.ones, torch.full, torch.rand, torch.randn}


class ReferenceSize(NamedTuple):
    """A published size of one backbone x head model."""

    backbone: str
    head: str
    megabytes: float
    source: str


REPORT = "reproduction report, section 3.1"
OFFICIAL_PLD = "docs/reference.md §1.5 (official PLD, C=256)"

# MB (10^6 bytes) of torch.save(model.state_dict()) with a one-channel output. The reproduction
# report's "Size" column (Singhal, section 3.1; docs/reference.md §1.5): its "SeD" is our `sed`, its "PLD"
# is our `pld_linear` (docs/reference.md §1.4). The official PLD's sizes were computed by
# this project on segmentation-models-pytorch MiT encoders (docs/reference.md §1.5).
REFERENCE_SIZES: tuple[ReferenceSize, ...] = (
    ReferenceSize("mit_b0", "sed", 14.926081, REPORT),
    ReferenceSize("mit_b1", "sed", 54.778625, REPORT),
    ReferenceSize("mit_b2", "sed", 109.518217, REPORT),
    ReferenceSize("mit_b3", "sed", 189.104937, REPORT),
    ReferenceSize("mit_b4", "sed", 256.277345, REPORT),
    ReferenceSize("mit_b5", "sed", 338.755437, REPORT),
    ReferenceSize("mit_b0", "pld_linear", 15.462749, REPORT),
    ReferenceSize("mit_b1", "pld_linear", 55.315293, REPORT),
    ReferenceSize("mit_b2", "pld_linear", 114.261413, REPORT),
    ReferenceSize("mit_b3", "pld_linear", 193.848261, REPORT),
    ReferenceSize("mit_b4", "pld_linear", 261.020605, REPORT),
    ReferenceSize("mit_b5", "pld_linear", 343.498715, REPORT),
    ReferenceSize("mit_b0", "pld", 29.082, OFFICIAL_PLD),
    ReferenceSize("mit_b1", "pld", 73.129, OFFICIAL_PLD),
    ReferenceSize("mit_b2", "pld", 117.356, OFFICIAL_PLD),
    ReferenceSize("mit_b3", "pld", 196.934, OFFICIAL_PLD),
    ReferenceSize("mit_b4", "pld", 264.097, OFFICIAL_PLD),
    ReferenceSize("mit_b5", "pld", 346.567, OFFICIAL_PLD),
)


def reference_sizes() -> pd.DataFrame:
    """`REFERENCE_SIZES` as a table with columns backbone, head, megabytes, source."""
    return pd.DataFrame(REFERENCE_SIZES, columns=ReferenceSize._fields)


class _ByteCounter:
    """A write-only file that counts the bytes written to it."""

    def __init__(self) -> None:
        self.count = 0

    def write(self, data: bytes) -> int:
        self.count += len(data)
        return len(data)

    def flush(self) -> None:
        """Nothing to flush: the bytes are counted, not kept."""


def state_dict_megabytes(model: nn.Module) -> float:
    """Size in MB (10^6 bytes) of `torch.save(model.state_dict())`, as the reproduction report
    measured; a model on meta counts the bytes its tensors would hold."""
    state = model.state_dict()  # an OrderedDict whose _metadata torch.save keeps
    for name, tensor in state.items():
        if tensor.is_meta:
            state[name] = torch.empty_strided(tensor.size(), tensor.stride(), dtype=tensor.dtype)
    counter = _ByteCounter()
    torch.save(state, counter)
    return counter.count / 1e6


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (trainable or not; buffers such as BN statistics excluded)."""
    return sum(parameter.numel() for parameter in model.parameters())


def forward_gflops(model: nn.Module, size: int = 352) -> float:
    """GFLOPs (2 x multiply-accumulates) of one forward pass on one size x size image.

    Counted by torch's FlopCounterMode: matrix products, convolutions and attention kernels only;
    normalisation, activations, softmax and resizing are not counted.
    """
    parameter = next(model.parameters())
    images = torch.zeros(1, 3, size, size, device=parameter.device, dtype=parameter.dtype)
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(images)
    model.train(was_training)
    return counter.get_total_flops() / 1e9


class OnMeta(TorchFunctionMode):
    """Build modules with no memory and no initialisation: new tensors go to the meta device,
    in-place operations on meta tensors (the weight initialisation) are skipped. Unlike
    `with torch.device("meta")`, other tensors stay on the CPU: smp's MiT reads its drop-path
    rates back with `torch.linspace(...).item()`."""

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        kwargs = dict(kwargs or {})
        if func in FACTORIES and kwargs.get("device") is None:
            kwargs["device"] = "meta"
        name = getattr(func, "__name__", "_")
        if name.endswith("_") and name[0] != "_" and args and getattr(args[0], "is_meta", False):
            return args[0]
        return func(*args, **kwargs)


def _flops(module: nn.Module, inputs: Any) -> tuple[int, Any]:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        outputs = module.eval()(inputs)
    return counter.get_total_flops(), outputs


def forward_gflops_on_meta(
    backbones: Iterable[str], heads: Sequence[str], size: int
) -> dict[tuple[str, str], float]:
    """Forward GFLOPs of one size x size image of each backbone + head, as `forward_gflops`
    counts them but on meta, faster: each backbone is counted once, each head on its outputs."""
    gflops = {}
    for backbone in backbones:
        spec = get_backbone_spec(backbone)
        with OnMeta():
            encoder = build_backbone(backbone).to("meta")
            decoders = {head: build_head(head, spec.channels, spec.embed_dim) for head in heads}
        encoder_flops, features = _flops(encoder, torch.zeros(1, 3, size, size, device="meta"))
        for head, decoder in decoders.items():
            head_flops, _ = _flops(decoder.to("meta"), features)
            gflops[(backbone, head)] = (encoder_flops + head_flops) / 1e9
    return gflops


def model_size_table(
    models: Iterable[tuple[str, str]], size: int = 352, record: Path | None = None
) -> pd.DataFrame:
    """Params, MB and GFLOPs of each (backbone, head) model, counted on meta, with the published
    MB where there is one.

    Columns: backbone, head, params, megabytes, gflops, reference_megabytes, reference_source,
    relative_difference ((megabytes - reference) / reference; NaN without a reference).
    With `record` (a JSON file), the table is kept there with what it was counted from (the
    models, the size, the code of `models` and the versions of torch, smp and timm); counting
    the same again reads it back.
    """
    models = list(dict.fromkeys(models))
    key = {
        "models": [list(model) for model in models],
        "image_size": size,
        "code": package_digest(Path(__file__).parent),
        "libraries": {name: version(name) for name in SIZE_LIBRARIES},
    }
    stored = stored_record(record, key) if record is not None else None
    if stored is not None:
        return pd.DataFrame(stored["table"], columns=list(TABLE_COLUMNS))
    table = _counted_table(models, size)
    if record is not None:
        store_record(record, {"key": key, "table": table.to_dict("records")})
    return table


def _counted_table(models: list[tuple[str, str]], size: int) -> pd.DataFrame:
    heads = list(dict.fromkeys(head for _, head in models))
    gflops = forward_gflops_on_meta(dict.fromkeys(b for b, _ in models), heads, size)
    rows = []
    for backbone, head in models:
        with OnMeta():
            model = build_model(backbone, head).to("meta")
        rows.append(
            {
                "backbone": backbone,
                "head": head,
                "params": count_parameters(model),
                "megabytes": state_dict_megabytes(model),
                "gflops": gflops[(backbone, head)],
            }
        )
    table = pd.DataFrame(rows, columns=list(TABLE_COLUMNS[:5]))
    references = reference_sizes().rename(
        columns={"megabytes": "reference_megabytes", "source": "reference_source"}
    )
    table = table.merge(references, on=["backbone", "head"], how="left")
    table["relative_difference"] = table["megabytes"] / table["reference_megabytes"] - 1
    return table
