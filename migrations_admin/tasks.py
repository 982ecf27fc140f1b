"""Celery tasks of the control plane, ticked by celery beat (CELERY_BEAT_SCHEDULE in settings); each is one
call into `migrations_admin.automation`."""

from celery import shared_task
from django.utils import timezone

from migrations_admin import automation


@shared_task
def auto_migrate() -> dict[str, str]:
    return automation.auto_migrate(timezone.now())


@shared_task
def evaluate_rollbacks() -> dict[str, str]:
    return automation.evaluate_rollbacks(timezone.now())


@shared_task
def report_progress() -> list[str]:
    return automation.report_progress(timezone.now())
