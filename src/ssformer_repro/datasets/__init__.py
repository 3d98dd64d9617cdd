"""Custom Kedro datasets (decoded-image cache, torch checkpoints)."""
