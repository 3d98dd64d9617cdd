"""Segmentation losses on logits: the study's BCE + Dice, and PraNet's structure loss.

A loss's options are its keyword arguments; `LOSS_OPTIONS` derives the `training.loss` block of
each from its signature, so a new loss is this file and the YAML (docs/architecture.md).
"""

from __future__ import annotations

from typing import Annotated

import torch
import torch.nn.functional as F
from pydantic import Field, NonNegativeFloat, PositiveInt
from torch import nn

from ssformer_repro.settings_types import Settings, options_model, options_of

Positive = Annotated[float, Field(gt=0)]


class BceDiceLoss(nn.Module):
    """BCE-with-logits plus soft Dice (per image, averaged over the batch), weighted 1:1 by default.

    One sigmoid is applied to the logits, and the soft Dice of an image is taken over all its
    pixels: 1 - (2 sum(p*g) + smooth) / (sum(p) + sum(g) + smooth).

    The official SSFormer code (utils/loss.py `dice_bce_loss`) differs in two ways: the training
    loop applies a sigmoid before the loss, which then treats those probabilities as logits (BCE
    with logits and a second sigmoid), and its "Dice" is computed per pixel,
    1 - (2 p g + 1) / (p + g + 1), then averaged over all pixels. That is a documented difference
    of this reproduction.
    """

    def __init__(
        self,
        bce_weight: NonNegativeFloat = 1.0,
        dice_weight: NonNegativeFloat = 1.0,
        smooth: Positive = 1.0,
    ) -> None:
        super().__init__()
        self.bce_weight = bce_weight
        self.dice_weight = dice_weight
        self.smooth = smooth

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Loss of (N,1,H,W) logits against an (N,1,H,W) mask in {0,1}."""
        logits = logits.float()  # the loss is computed in fp32 even under autocast
        bce = F.binary_cross_entropy_with_logits(logits, target)
        probability = torch.sigmoid(logits)
        pixel_dims = tuple(range(1, logits.ndim))
        intersection = (probability * target).sum(dim=pixel_dims)
        total = probability.sum(dim=pixel_dims) + target.sum(dim=pixel_dims)
        dice = (2 * intersection + self.smooth) / (total + self.smooth)
        return self.bce_weight * bce + self.dice_weight * (1 - dice).mean()


class StructureLoss(nn.Module):
    """PraNet's structure loss: weighted BCE + weighted IoU, weight 1 + 5|avgpool31(mask) - mask|.

    The weight stresses pixels near the mask boundary. It exists, unused, in the official code.
    PraNet's own version passes `reduce='none'` to BCE, which PyTorch reads as the legacy
    `reduce=True` (a scalar mean), so its BCE term ends up unweighted; here the BCE is weighted
    per pixel as intended.
    """

    def __init__(
        self,
        kernel_size: PositiveInt = 31,
        edge_weight: NonNegativeFloat = 5.0,
        smooth: Positive = 1.0,
    ) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.edge_weight = edge_weight
        self.smooth = smooth

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Loss of (N,1,H,W) logits against an (N,1,H,W) mask in {0,1}."""
        logits = logits.float()
        local_mean = F.avg_pool2d(
            target, kernel_size=self.kernel_size, stride=1, padding=self.kernel_size // 2
        )
        weight = 1 + self.edge_weight * torch.abs(local_mean - target)
        weight_sum = weight.sum(dim=(2, 3))

        bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        weighted_bce = (weight * bce).sum(dim=(2, 3)) / weight_sum

        probability = torch.sigmoid(logits)
        intersection = (probability * target * weight).sum(dim=(2, 3))
        union = ((probability + target) * weight).sum(dim=(2, 3))
        weighted_iou = 1 - (intersection + self.smooth) / (union - intersection + self.smooth)
        return (weighted_bce + weighted_iou).mean()


LOSSES: dict[str, type[nn.Module]] = {"bce_dice": BceDiceLoss, "structure": StructureLoss}
# The `training.loss` block of each loss: `name` and the loss's keyword arguments.
LOSS_OPTIONS: dict[str, type[Settings]] = {
    name: options_model(loss, f"{loss.__name__}Options", choice=("name", name))
    for name, loss in LOSSES.items()
}


def build_loss(options: Settings) -> nn.Module:
    """The loss a `training.loss` block (one of `LOSS_OPTIONS`) chooses, with its options."""
    return LOSSES[options.name](**options_of(options, "name"))
