"""Published numbers the study is compared against, in one place.

Sources: the reproduction report (Singhal, section 4.1; docs/reference.md §6.1: MiT-B0..B5, mIoU
and mDice in %, foreground Dice/IoU per image at threshold 0.5, averaged over images), the
SSFormer paper (SSFormer-L = MiT-B4, each dataset trained on its own; §6.2) and the official
README (SSFormer-S = MiT-B2 + PLD and SSFormer-L = MiT-B4 + PLD trained on the PraNet
TrainDataset, per test set; §6.3).
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


# The official README's SSFormer-S and SSFormer-L, trained on the PraNet TrainDataset, per test
# set: backbone -> {test set: (mIoU %, mDice %)}; the dataset is the project's `pranet`.
OFFICIAL_MODELS = {"mit_b2": "SSFormer-S", "mit_b4": "SSFormer-L"}
OFFICIAL_README_RESULTS = {
    "mit_b2": {
        "CVC-300": (82.1, 88.7),
        "CVC-ClinicDB": (87.3, 91.6),
        "Kvasir": (87.8, 92.5),
        "CVC-ColonDB": (69.7, 77.2),
        "ETIS-LaribPolypDB": (69.8, 76.7),
    },
    "mit_b4": {
        "CVC-300": (82.7, 89.5),
        "CVC-ClinicDB": (85.5, 90.6),
        "Kvasir": (86.4, 91.7),
        "CVC-ColonDB": (72.1, 80.2),
        "ETIS-LaribPolypDB": (72.0, 79.6),
    },
}
PRANET_DATASET = "pranet"
# How the field reads the PraNet test sets: the domains of the TrainDataset (Kvasir-SEG and
# CVC-ClinicDB images), and unseen ones (docs/reference.md §4.3).
TEST_SET_DOMAINS = {
    "Kvasir": "seen",
    "CVC-ClinicDB": "seen",
    "CVC-ColonDB": "unseen",
    "ETIS-LaribPolypDB": "unseen",
    "CVC-300": "unseen",
}


def published_table() -> pd.DataFrame:
    """Long table of every published number: source, model, dataset, test_set, backbone, head,
    miou, mdice. `test_set` is the dataset itself where a dataset has one test split."""
    rows = [
        {
            "source": source,
            "model": "",
            "dataset": dataset,
            "test_set": dataset,
            "backbone": backbone,
            "head": head,
            "miou": miou,
            "mdice": mdice,
        }
        for source, table in (("report", REPORT_RESULTS), ("paper", PAPER_RESULTS))
        for (dataset, backbone), heads in table.items()
        for head, (miou, mdice) in heads.items()
    ]
    rows += [
        {
            "source": "official README",
            "model": OFFICIAL_MODELS[backbone],
            "dataset": PRANET_DATASET,
            "test_set": test_set,
            "backbone": backbone,
            "head": "pld",
            "miou": miou,
            "mdice": mdice,
        }
        for backbone, sets in OFFICIAL_README_RESULTS.items()
        for test_set, (miou, mdice) in sets.items()
    ]
    return pd.DataFrame(rows)


def report_differences() -> dict[tuple[str, str], float]:
    """The report's mDice difference, its PLD (our `pld_linear`) minus SeD, in points, per
    (dataset, backbone): the one training per cell its winners rest on."""
    return {
        key: round(heads["pld_linear"][1] - heads["sed"][1], 2)
        for key, heads in REPORT_RESULTS.items()
    }
