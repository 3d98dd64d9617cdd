"""Segment a folder of new frames with a trained run (no masks needed)."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
