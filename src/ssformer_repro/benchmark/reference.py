"""The baseline: a training loop written the way the official SSFormer code trains.

As in the official `train.py`, `utils/my_dataset.py` and `utils/custom_transforms.py`
(github.com/Qiming-Huang/ssformer): every sample decoded from its file and augmented with PIL on
every step (numpy's global RNG); fp32, NCHW, eager; a loss fed sigmoid outputs that applies a
second sigmoid (`dice_bce_loss`); AdamW(foreach=False, fused=False); `loss.item()` every step.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageEnhance, ImageOps
from torch import nn
from torch.utils.data import Dataset

from ssformer_repro.polyps.augment import DEFAULT_AUGMENTATION

MEAN = np.array(DEFAULT_AUGMENTATION["normalize"]["mean"], dtype=np.float32)
STD = np.array(DEFAULT_AUGMENTATION["normalize"]["std"], dtype=np.float32)
ENHANCERS = (ImageEnhance.Contrast, ImageEnhance.Sharpness, ImageEnhance.Brightness)


def official_augment(
    image: Image.Image, gt: Image.Image, size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The official training transform list, in order; returns (3,S,S) and (1,S,S) float tensors."""
    image, gt = image.resize((size, size), Image.BILINEAR), gt.resize((size, size), Image.BILINEAR)
    scale = np.random.random() * 0.5 + 0.75
    if np.random.random() < 0.5:
        scaled = (round(image.width * scale), round(image.height * scale))
        image, gt = (_centre_crop(item.resize(scaled), size) for item in (image, gt))
    flip_lr, flip_ud = np.random.random() < 0.5, np.random.random() < 0.5
    image, gt = (ImageOps.mirror(item) if flip_lr else item for item in (image, gt))
    image, gt = (ImageOps.flip(item) if flip_ud else item for item in (image, gt))
    angle = np.random.randint(0, 359)
    if np.random.random() < 0.5:
        image, gt = (_centre_crop(item.rotate(angle, expand=True), size) for item in (image, gt))
    enhancers = list(ENHANCERS)
    np.random.shuffle(enhancers)
    for enhancer in enhancers:
        if np.random.random() > 0.5:
            image = enhancer(image).enhance(1 + np.random.random() / 10)
    gt_array, draw = np.array(gt), np.random.random()
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (np.random.randint(2, 5),) * 2)
    if draw < 2 / 3:  # dilate below 1/3, erode below 2/3, else neither
        gt_array = (cv2.dilate if draw < 1 / 3 else cv2.erode)(gt_array, kernel)
    pixels = (np.array(image, dtype=np.float32) / 255 - MEAN) / STD
    mask = gt_array.astype(np.float32) / 255  # soft labels after the bilinear resizes, as there
    return torch.from_numpy(pixels.transpose(2, 0, 1)).float(), torch.from_numpy(mask)[None]


def _centre_crop(image: Image.Image, size: int) -> Image.Image:
    """Crop (or zero-pad) to size x size around the centre, as the official code does."""
    left, top = (image.width - size) // 2, (image.height - size) // 2
    return image.crop((left, top, left + size, top + size))


class OfficialStyleDataset(Dataset):
    """(image, mask) tensors decoded from the files with PIL and augmented on every access."""

    def __init__(self, image_paths: Sequence[str], mask_paths: Sequence[str], size: int) -> None:
        if len(image_paths) != len(mask_paths):
            raise ValueError(f"Got {len(image_paths)} images but {len(mask_paths)} masks.")
        self.image_paths, self.mask_paths, self.size = list(image_paths), list(mask_paths), size

    def __len__(self) -> int:
        return len(self.image_paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = Image.open(self.image_paths[index]).convert("RGB")
        gt = Image.open(self.mask_paths[index]).convert("L")
        return official_augment(image, gt, self.size)


def official_dice_bce_loss(probabilities: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """The official `dice_bce_loss`, fed sigmoid outputs: BCE-with-logits and a per-pixel "Dice"."""
    bce = F.binary_cross_entropy_with_logits(probabilities, masks, reduction="none")
    second_sigmoid = torch.sigmoid(probabilities)
    dice = 1 - (2 * second_sigmoid * masks + 1) / (second_sigmoid + masks + 1)
    return (bce + dice).mean()


class ReferenceTrainer:
    """The official training step: fp32, NCHW, eager, unfused AdamW, a loss sync every step."""

    def __init__(self, model: nn.Module, device: torch.device, lr: float = 1e-4) -> None:
        self.device, self.model = device, model.to(device)
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=lr, foreach=False, fused=False)

    def train(self, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> int:
        """Run one step per (images, masks) batch; returns the number of images seen."""
        self.model.train()
        n_images = 0
        for host_images, host_masks in batches:
            images, masks = host_images.to(self.device), host_masks.to(self.device)
            probabilities = torch.sigmoid(self.model(images))
            loss = official_dice_bce_loss(probabilities, masks)
            loss.item()  # the official loop sums the loss on the host every step
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            n_images += len(images)
        return n_images
