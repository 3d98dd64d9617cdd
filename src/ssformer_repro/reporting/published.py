"""Published numbers the study is compared against, in one place.

Sources: the reproduction report (Singhal, section 4.1; docs/reference.md §6.1: MiT-B0..B5, mIoU and mDice in %,
foreground Dice/IoU per image at threshold 0.5, averaged over images) and the SSFormer paper
(SSFormer-L = MiT-B4, each dataset trained on its own; docs/reference.md §6).
"""

from __future__ import annotations

import pandas as pd

# (dataset, backbone) -> {head: (mIoU %, mDice %)}; the report's "PLD" is a PLD without the 3x3
# Local Emphasis (its model sizes match our `pld_linear`), so it is listed under that head.
REPORT_RESULTS = {
    ("clinicdb", "mit_b0"): {"pld_linear": (90.59, 95.06), "sed": (90.01, 94.74)},
    ("clinicdb", "mit_b1"): {"pld_linear": (91.41, 95.51), "sed": (90.71, 95.13)},
    ("clinicdb", "mit_b2"): {"pld_linear": (92.11, 95.89), "sed": (91.61, 95.62)},
    ("clinicdb", "mit_b3"): {"pld_linear": (91.98, 95.82), "sed": (92.11, 95.90)},
    ("clinicdb", "mit_b4"): {"pld_linear": (91.82, 95.74), "sed": (92.03, 95.85)},
    ("clinicdb", "mit_b5"): {"pld_linear": (91.91, 95.79), "sed": (92.35, 96.02)},
    ("kvasir", "mit_b0"): {"pld_linear": (84.02, 91.31), "sed": (84.77, 91.76)},
    ("kvasir", "mit_b1"): {"pld_linear": (84.37, 91.52), "sed": (84.91, 91.84)},
    ("kvasir", "mit_b2"): {"pld_linear": (85.68, 92.29), "sed": (85.38, 92.12)},
    ("kvasir", "mit_b3"): {"pld_linear": (86.41, 92.71), "sed": (86.30, 92.65)},
    ("kvasir", "mit_b4"): {"pld_linear": (85.34, 92.09), "sed": (86.04, 92.50)},
    ("kvasir", "mit_b5"): {"pld_linear": (86.62, 92.83), "sed": (86.59, 92.81)},
}

# The SSFormer paper, SSFormer-L (MiT-B4 with the official PLD), (mIoU %, mDice %).
PAPER_RESULTS = {
    ("kvasir", "mit_b4"): {"pld": (89.05, 93.57)},
    ("clinicdb", "mit_b4"): {"pld": (89.95, 94.47)},
}


def published_table() -> pd.DataFrame:
    """Long table of every published number: source, dataset, backbone, head, miou, mdice."""
    rows = [
        {
            "source": source,
            "dataset": dataset,
            "backbone": backbone,
            "head": head,
            "miou": miou,
            "mdice": mdice,
        }
        for source, table in (("report", REPORT_RESULTS), ("paper", PAPER_RESULTS))
        for (dataset, backbone), heads in table.items()
        for head, (miou, mdice) in heads.items()
    ]
    return pd.DataFrame(rows)
