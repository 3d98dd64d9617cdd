"""The study's tables and figures, computed from every run of the grid."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
