"""Using trained models: segment new frames, and export a run's model (ONNX, MLflow)."""
