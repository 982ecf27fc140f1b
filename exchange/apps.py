"""App configuration of the exchange (trading pairs, orders, trades)."""

from django.apps import AppConfig
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class ExchangeConfig(AppConfig):
    """The trading side of the back office."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "exchange"

    def ready(self) -> None:
        """Refuses to start with a rate limit that says nothing clear; counts the process's threads in its
        metrics; times the process's SQL statements for /admin/slow-queries; hands a web process's metrics to
        the others' /metrics after the requests it serves."""
        from django.core.signals import request_finished
        from prometheus_client import REGISTRY

        from exchange.api.throttling import parse_rate  # imports DRF, which needs the app registry
        from exchange.ops import slow_queries
        from exchange.ops.process_metrics import WebPublisher, count_threads
        from exchange.stores import shared_redis

        try:
            count_threads(REGISTRY)
        except ValueError:          # registered already (the app was readied twice in this process)
            pass
        slow_queries.install()
        publisher = WebPublisher(shared_redis(), settings.METRICS_COLLECTION_INTERVAL)
        request_finished.connect(publisher.after_request, weak=False, dispatch_uid="exchange-web-metrics")

        for name in ("API_RATE_USER", "API_RATE_ANONYMOUS"):
            try:
                parse_rate(getattr(settings, name))
            except ValueError as error:
                raise ImproperlyConfigured(f"{name}: {error}") from None
