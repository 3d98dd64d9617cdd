import math

import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError

from ssformer_repro.training.loss import (
    LOSS_OPTIONS,
    LOSSES,
    BceDiceLoss,
    StructureLoss,
    build_loss,
)
from ssformer_repro.training.settings import TrainingSettings


def test_bce_term_matches_torch_bce_with_logits():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 1, 8, 8, generator=generator)
    target = (torch.rand(3, 1, 8, 8, generator=generator) > 0.5).float()

    loss = BceDiceLoss(bce_weight=1.0, dice_weight=0.0)(logits, target)

    assert loss.item() == pytest.approx(F.binary_cross_entropy_with_logits(logits, target).item())


def test_hand_computed_value_uses_one_sigmoid():
    # p = sigmoid(0) = 0.5 everywhere; one foreground pixel of four.
    logits = torch.zeros(1, 1, 2, 2)
    target = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    # Dice = (2 * 0.5 + 1) / ((4 * 0.5 + 1) + 1) = 0.5; BCE = log 2 at every pixel.
    expected = math.log(2) + (1 - 0.5)

    assert BceDiceLoss()(logits, target).item() == pytest.approx(expected)


def test_weights_scale_the_two_terms():
    logits = torch.zeros(1, 1, 2, 2)
    target = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])

    loss = BceDiceLoss(bce_weight=2.0, dice_weight=0.5)(logits, target)

    assert loss.item() == pytest.approx(2 * math.log(2) + 0.5 * 0.5)


def test_perfect_logits_give_near_zero_loss():
    target = torch.zeros(2, 1, 16, 16)
    target[:, :, 4:12, 4:12] = 1
    logits = (target * 2 - 1) * 30  # +30 on the mask, -30 elsewhere

    dice_only = BceDiceLoss(bce_weight=0.0)(logits, target)
    total = BceDiceLoss()(logits, target)

    assert dice_only.item() < 1e-6
    assert total.item() < 1e-6


def test_dice_is_per_image_then_averaged():
    # Image 0: a 6x6 mask predicted perfectly; image 1: a 2x2 mask predicted empty.
    target = torch.zeros(2, 1, 8, 8)
    target[0, :, 1:7, 1:7] = 1
    target[1, :, 3:5, 3:5] = 1
    logits = torch.full_like(target, -40.0)
    logits[0] = (target[0] * 2 - 1) * 40

    loss = BceDiceLoss(bce_weight=0.0, smooth=1.0)(logits, target)

    dice_image_1 = 1 / (4 + 1)  # (2*0 + 1) / (0 + 4 + 1)
    per_image = ((1 - 1.0) + (1 - dice_image_1)) / 2
    pooled = 1 - (2 * 36 + 1) / (36 + 40 + 1)  # one Dice over the whole batch
    assert loss.item() == pytest.approx(per_image, abs=1e-6)
    assert loss.item() != pytest.approx(pooled, abs=1e-3)


def test_loss_is_computed_in_float32_for_half_logits():
    logits = torch.zeros(1, 1, 4, 4, dtype=torch.bfloat16, requires_grad=True)
    target = torch.ones(1, 1, 4, 4)

    loss = BceDiceLoss()(logits, target)
    loss.backward()

    assert loss.dtype == torch.float32
    assert logits.grad is not None and torch.isfinite(logits.grad.float()).all()


def test_structure_loss_with_uniform_weight_matches_hand_value():
    # An empty mask has weight 1 everywhere, so the terms reduce to plain BCE and IoU.
    logits = torch.zeros(1, 1, 4, 4)
    target = torch.zeros(1, 1, 4, 4)
    sum_p = 16 * 0.5
    expected = math.log(2) + (1 - (0 + 1) / (sum_p + 1))

    assert StructureLoss()(logits, target).item() == pytest.approx(expected)


def test_structure_loss_is_near_zero_for_perfect_logits():
    target = torch.zeros(1, 1, 32, 32)
    target[:, :, 8:24, 8:24] = 1

    assert StructureLoss()((target * 2 - 1) * 30, target).item() < 1e-6


def test_structure_loss_weights_boundary_errors_more():
    target = torch.zeros(1, 1, 64, 64)
    target[:, :, 16:48, 16:48] = 1
    perfect = (target * 2 - 1) * 10
    boundary_error, far_error = perfect.clone(), perfect.clone()
    boundary_error[0, 0, 16, 32] = -10  # a foreground pixel on the edge, predicted background
    far_error[0, 0, 32, 32] = -10  # a foreground pixel deep inside, predicted background

    loss = StructureLoss()
    assert loss(boundary_error, target) > loss(far_error, target)


def test_build_loss_from_its_options_block():
    loss = build_loss(LOSS_OPTIONS["bce_dice"](bce_weight=0.5, smooth=2.0))

    assert isinstance(loss, BceDiceLoss)
    assert (loss.bce_weight, loss.dice_weight, loss.smooth) == (0.5, 1.0, 2.0)
    assert isinstance(build_loss(LOSS_OPTIONS["structure"]()), StructureLoss)
    assert set(LOSSES) == set(LOSS_OPTIONS) == {"bce_dice", "structure"}


def test_a_loss_options_are_its_keyword_arguments_with_their_defaults():
    options = LOSS_OPTIONS["structure"]()
    assert options.model_dump() == {
        "name": "structure",
        "kernel_size": 31,
        "edge_weight": 5.0,
        "smooth": 1.0,
    }
    assert StructureLoss().kernel_size == options.kernel_size


def test_a_bad_or_unknown_loss_option_is_refused():
    with pytest.raises(ValidationError, match="alpha"):
        LOSS_OPTIONS["bce_dice"](alpha=0.3)
    with pytest.raises(ValidationError, match="greater than 0"):
        LOSS_OPTIONS["structure"](kernel_size=0)
    with pytest.raises(ValidationError, match="'focal'"):
        TrainingSettings.model_validate({"epochs": 1, "batch_size": 2, "loss": {"name": "focal"}})
