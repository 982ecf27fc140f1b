"""Celery tasks of the control plane, each one call into `migrations_admin.automation`, and their schedule:
celery beat runs all three every MIGRATION_TICK_INTERVAL."""

from celery import Celery, shared_task
from django.conf import settings
from django.utils import timezone

from exchange.celery import app
from migrations_admin import automation
from migrations_admin.config import preset


@shared_task
def auto_migrate() -> dict[str, str]:
    return automation.auto_migrate(timezone.now())


@shared_task
def evaluate_rollbacks() -> dict[str, str]:
    return automation.evaluate_rollbacks(timezone.now())


@shared_task
def report_progress() -> list[str]:
    return automation.report_progress(timezone.now())


def tick_seconds() -> float:
    """MIGRATION_TICK_INTERVAL, by default the metrics interval of the MIGRATION_PRESET preset."""
    return float(settings.MIGRATION_TICK_SECONDS or preset(settings.MIGRATION_PRESET).metrics_interval_s)


def schedule_ticks(celery: Celery) -> None:
    """Adds the three tasks to celery beat's schedule. Each expires after one tick: a tick that waited longer
    than that in the queue would decide on stale figures, and the next one comes anyway."""
    tick = tick_seconds()
    for task in (auto_migrate, evaluate_rollbacks, report_progress):
        celery.add_periodic_task(tick, task.s(), name=task.name, expires=tick)


# Celery imports this module (autodiscovery) before beat reads its schedule.
schedule_ticks(app)
