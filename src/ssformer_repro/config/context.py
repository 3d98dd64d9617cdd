"""The project's Kedro context: it hands the session's parameters to pipeline registration."""

from attrs import define
from kedro.framework.context import KedroContext

from ssformer_repro.config.loader import use_session_parameters


@define(slots=False)
class ProjectContext(KedroContext):
    """Kedro's context, which makes the pipelines those of its own session's parameters.

    Created by every Kedro session (kedro run, kedro viz, notebooks), hooks or not.
    """

    def __attrs_post_init__(self) -> None:
        use_session_parameters(self.config_loader["parameters"])
