"""Export a trained run to ONNX (checked with ONNX Runtime) and to MLflow's PyTorch flavour."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
