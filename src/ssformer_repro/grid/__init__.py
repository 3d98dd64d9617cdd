"""The experiment grid: its runs (`GridRun`), their settings, and the command line over them."""

from ssformer_repro.grid.runs import GridRun, grid_runs, run_settings

__all__ = ["GridRun", "grid_runs", "run_settings"]
