"""How a paper names the heads, which pairs of heads the verdict compares, and how a table prints
a p-value: one home for each, light to import (the start-of-run check reads it)."""

from __future__ import annotations

import math

# Each PLD variant against SeD, as the study compares them, and the two PLDs against each other.
COMPARISONS = (("pld", "sed"), ("pld_linear", "sed"), ("pld", "pld_linear"))
HEAD_NAMES = {"pld": "PLD (official)", "pld_linear": "PLD (report)", "sed": "SeD"}
HEAD_NOTE = (
    "PLD (official) is `pld`, the official SSFormer head; PLD (report) is `pld_linear`, the "
    "head the reproduction report trained (no 3x3 Local Emphasis); SeD is `sed`, SegFormer's "
    "all-MLP decoder."
)


def format_p(p: float) -> str:
    """A p-value as papers print it: three decimals, and "< 0.001" rather than a rounded 0."""
    if math.isnan(p):  # no test
        return ""
    return "< 0.001" if p < 0.001 else f"{p:.3f}"
