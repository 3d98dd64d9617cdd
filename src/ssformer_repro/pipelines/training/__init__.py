"""Train and evaluate every dataset x backbone x head run of the experiment grid."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
