"""Celery tasks of the exchange itself: the retention prune, every RETENTION_PRUNE_HOURS, and the webhooks'
deliveries (`exchange/webhooks.py`)."""

import logging

import requests
from celery import shared_task
from django.conf import settings
from django.utils import timezone

from exchange import retention
from exchange.celery import app
from exchange.models import AuditLog
from exchange.webhooks import ACTOR, backoff_seconds, receiver

log = logging.getLogger(__name__)

RETENTION_PRUNE_HOURS = 6


@shared_task
def prune_old_records() -> dict[str, int]:
    return retention.prune(timezone.now())


@shared_task(bind=True, max_retries=None, acks_late=True)
def deliver_webhook(self, receiver_index: int, payload: dict) -> int:
    """POSTs the payload to the receiver at `receiver_index` in ALERT_WEBHOOK_URLS; retried with backoff on a
    network error or a non-2xx answer; audited once delivered or given up. Returns the receiver's status (0:
    none, or no such receiver any more)."""
    urls = settings.ALERT_WEBHOOK_URLS
    if not 0 <= receiver_index < len(urls):
        log.error("webhook receiver gone from ALERT_WEBHOOK_URLS", extra={"event": "webhook_failed",
                                                                          "alert": payload.get("event")})
        return 0
    url = urls[receiver_index]
    attempt = self.request.retries + 1
    try:
        response = requests.post(url, json=payload, timeout=settings.WEBHOOK_TIMEOUT_SECONDS)
        response.raise_for_status()
    except requests.RequestException as error:
        status = getattr(error.response, "status_code", 0) or 0
        if self.request.retries < settings.WEBHOOK_MAX_RETRIES:
            log.warning("webhook delivery failed; retrying", extra={
                "event": "webhook_retry", "receiver": receiver(url), "alert": payload.get("event"),
                "attempt": attempt, "error": str(error)})
            raise self.retry(exc=error, countdown=backoff_seconds(self.request.retries)) from None
        log.error("webhook given up", extra={"event": "webhook_failed", "receiver": receiver(url),
                                             "alert": payload.get("event"), "attempts": attempt})
        AuditLog.objects.create(actor=ACTOR, action="webhook_failed", target=f"webhook:{receiver(url)}",
                                details={"alert": payload.get("event"), "attempts": attempt, "status": status,
                                         "error": str(error)[:500]})
        return status
    AuditLog.objects.create(actor=ACTOR, action="webhook_delivered", target=f"webhook:{receiver(url)}",
                            details={"alert": payload.get("event"), "attempts": attempt,
                                     "status": response.status_code})
    return response.status_code


# Celery imports this module (autodiscovery) before beat reads its schedule; a prune that waited an hour in the
# queue is dropped (the next one comes).
app.add_periodic_task(RETENTION_PRUNE_HOURS * 3600, prune_old_records.s(), name="prune_old_records", expires=3600)
