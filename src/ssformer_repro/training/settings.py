"""The settings of one training run: `TrainingSettings` (the `training` parameter block, see
config/schema.py), what may change on resume, and how "auto" settings resolve."""

from ssformer_repro.config.schema import AUTO, TrainingSettings

# Settings that may differ from those of the last.pt being resumed.
RESUMABLE_CHANGES = frozenset(
    {"epochs", "on_changed_settings", "checkpoint_every_seconds", "threads"}
)
# What compile: "auto" means on every device, until a measurement shows compiling pays back.
COMPILE_PAYS_BACK = False

__all__ = ["AUTO", "COMPILE_PAYS_BACK", "RESUMABLE_CHANGES", "TrainingSettings", "resolve_auto"]


def resolve_auto(setting: bool | str, auto_value: bool) -> bool:
    """A true/false/"auto" setting as a bool, "auto" meaning `auto_value`."""
    return auto_value if setting == AUTO else bool(setting)
