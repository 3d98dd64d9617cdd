"""Segmentation models of the study: MiT/PVTv2 backbones with PLD, PLD-linear or SeD heads."""
