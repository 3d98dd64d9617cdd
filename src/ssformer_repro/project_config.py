"""The run's parameters at pipeline-registration time: the experiment grid is configuration.

Kedro builds pipelines lazily, after it has made the config loader for the chosen environment
(``--env``). ``ProjectConfigLoader`` remembers the latest loader so that ``create_pipeline``
functions can read the grid (datasets, backbones, heads) of *that* environment.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

from kedro.config import OmegaConfigLoader


class ProjectConfigLoader(OmegaConfigLoader):
    """An OmegaConfigLoader that records itself as the loader of the current Kedro session."""

    latest: ClassVar[ProjectConfigLoader | None] = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        ProjectConfigLoader.latest = self


def project_parameters() -> dict[str, Any]:
    """Parameters of the active session's environment (or of ``KEDRO_ENV`` outside a session)."""
    loader = ProjectConfigLoader.latest
    if loader is None:
        from kedro.framework.project import settings

        conf_source = Path(__file__).resolve().parents[2] / settings.CONF_SOURCE
        loader = ProjectConfigLoader(
            conf_source=str(conf_source),
            env=os.getenv("KEDRO_ENV"),
            **settings.CONFIG_LOADER_ARGS,
        )
    return loader["parameters"]
