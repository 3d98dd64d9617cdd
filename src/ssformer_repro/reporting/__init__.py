"""Tables and figures of the study, computed from every run's metrics."""
