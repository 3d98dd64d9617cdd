"""The `evaluation` parameter block: how a run's test split is scored."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, NonNegativeInt, PositiveInt

from ssformer_repro.settings_types import AUTO, AmpMode, Settings

# Test-time augmentation: none, or probabilities averaged over flipped copies (flipped back):
# hflip = the image and its horizontal flip; flips = also the vertical and the double flip.
TtaMode = Literal["none", "hflip", "flips"]


class EvaluationSettings(Settings):
    """Scoring of the test split: fp32 by default, as the study scored."""

    threshold: Annotated[float, Field(gt=0, lt=1)] = 0.5
    amp: AmpMode = "off"
    batch_size: PositiveInt = 16
    num_workers: NonNegativeInt = 0
    device: str = AUTO
    threads: PositiveInt | None = None  # torch's CPU threads; None: torch's default
    tta: TtaMode = "none"  # with flips, the tables show the scores without and with TTA
    # NSD's tolerance, a fraction of the frame's diagonal (docs/reference.md §5.5)
    nsd_tolerance: Annotated[float, Field(gt=0, lt=1)] = 0.005
