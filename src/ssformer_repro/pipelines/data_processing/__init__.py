"""Ingest, validate, split and cache each polyp dataset; preview its augmentation."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
