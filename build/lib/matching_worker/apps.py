"""App configuration of the matching worker: it has no models (it writes the exchange's tables), only its
management command, `run_matching_worker`."""

from django.apps import AppConfig


class MatchingWorkerConfig(AppConfig):
    """The process that runs a shard's books and persists their results."""

    name = "matching_worker"
    verbose_name = "Matching worker"
