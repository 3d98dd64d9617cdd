"""Segmentation models of the study: MiT/PVTv2 backbones with PLD, PLD-linear or SeD heads."""

from ssformer_repro.models.backbones import BACKBONES, available_backbones
from ssformer_repro.models.heads import HEADS, available_heads
from ssformer_repro.models.pretrained import load_encoder_weights
from ssformer_repro.models.segmenter import Segmenter, build_configured_model, build_model

__all__ = [
    "BACKBONES",
    "HEADS",
    "Segmenter",
    "available_backbones",
    "available_heads",
    "build_configured_model",
    "build_model",
    "load_encoder_weights",
]
