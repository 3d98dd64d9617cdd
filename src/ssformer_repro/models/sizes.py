"""Model sizes: parameters, saved megabytes and forward GFLOPs, next to the published sizes."""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import NamedTuple

import pandas as pd
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ssformer_repro.models.segmenter import build_model


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


def state_dict_megabytes(model: nn.Module) -> float:
    """Size in MB (10^6 bytes) of `torch.save(model.state_dict())`, as the reproduction report measured."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes / 1e6


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


def model_size_table(
    backbones: Iterable[str], heads: Iterable[str], size: int = 352
) -> pd.DataFrame:
    """Params, MB and GFLOPs of every backbone x head, with the published MB where there is one.

    Columns: backbone, head, params, megabytes, gflops, reference_megabytes, reference_source,
    relative_difference ((megabytes - reference) / reference; NaN without a reference).
    """
    heads = list(heads)
    rows = []
    for backbone in backbones:
        for head in heads:
            model = build_model(backbone, head)
            rows.append(
                {
                    "backbone": backbone,
                    "head": head,
                    "params": count_parameters(model),
                    "megabytes": state_dict_megabytes(model),
                    "gflops": forward_gflops(model, size),
                }
            )
    table = pd.DataFrame(rows)
    references = reference_sizes().rename(
        columns={"megabytes": "reference_megabytes", "source": "reference_source"}
    )
    table = table.merge(references, on=["backbone", "head"], how="left")
    table["relative_difference"] = table["megabytes"] / table["reference_megabytes"] - 1
    return table
