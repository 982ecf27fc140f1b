"""Celery tasks of the exchange itself: the retention prune, every RETENTION_PRUNE_HOURS. (The webhooks' deliveries
are a task of `exchange/ops/webhooks.py`, imported by every Celery process through CELERY_IMPORTS.)"""

from celery import shared_task
from django.utils import timezone

from exchange.celery import app
from exchange.ops import retention

RETENTION_PRUNE_HOURS = 6


@shared_task
def prune_old_records() -> dict[str, int]:
    return retention.prune(timezone.now())


# Celery imports this module (autodiscovery) before beat reads its schedule; a prune that waited an hour in the
# queue is dropped (the next one comes).
app.add_periodic_task(RETENTION_PRUNE_HOURS * 3600, prune_old_records.s(), name="prune_old_records", expires=3600)
