"""The "PLD" the reproduction report trained: SeD's Linear embeddings in place of Local Emphasis.

Its sizes match the report's "Size" column (docs/reference.md §1.4): per-stage Linear(C_i -> E) with
SeD's E, the three stepwise 2E -> E fusion units, and no 3x3 convolutions at all.
"""

from __future__ import annotations

from ssformer_repro.models.heads.pld import ProgressiveLocalityDecoder
from ssformer_repro.models.heads.sed import LinearEmbedding


class LinearLocalityDecoder(ProgressiveLocalityDecoder):
    """PLD with each stage embedded by SeD's Linear(C_i -> E) instead of two 3x3 convolutions."""

    stage_layer = LinearEmbedding
    # The report ran its heads inside sithu31296/semantic-segmentation, whose SegFormer resizes the
    # logits with align_corners=False.
    upsample_align_corners = False
