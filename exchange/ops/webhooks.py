"""Telling people when it matters: a breaker trip, a rollback (automatic or not), an emergency stop and a
finished migration are posted to every URL in ALERT_WEBHOOK_URLS as Slack-compatible JSON (`{"text": ...}`, with
`event` and `details` beside it for other receivers).

Each delivery is a Celery task, queued once the action has committed, retried with exponential backoff (1, 2,
4… s, at most WEBHOOK_MAX_RETRIES retries) and audited when delivered or given up. Neither a failing receiver nor
a broker that cannot take the task ever blocks or undoes the action: the action has happened; the failure is
logged (and, for a receiver, audited)."""
from __future__ import annotations

import logging
from urllib.parse import urlsplit

import requests
from celery import shared_task
from django.conf import settings

from exchange.models import AuditLog

log = logging.getLogger(__name__)
ACTOR = "celery:webhooks"
MAX_BACKOFF_SECONDS = 300


def notify(event: str, text: str, details: dict) -> None:
    """Queues the message's delivery to each configured receiver; never raises."""
    payload = {"text": text, "event": event, "details": details}
    # The task is given the receiver's place in ALERT_WEBHOOK_URLS, not its URL: Celery logs a task's arguments,
    # and a Slack URL is its own secret.
    for index, url in enumerate(settings.ALERT_WEBHOOK_URLS):
        try:
            deliver_webhook.delay(index, payload)
        except Exception:  # noqa: BLE001 - the broker away: the action stands, the message is lost, and said so
            log.exception("webhook not queued", extra={"event": "webhook_not_queued", "receiver": receiver(url),
                                                       "alert": event})


def receiver(url: str) -> str:
    """How audits and logs name a receiver: its host, never the whole URL (a Slack URL is its own secret)."""
    return urlsplit(url).netloc or "unknown"


def backoff_seconds(retries: int) -> int:
    return min(MAX_BACKOFF_SECONDS, 2 ** retries)


# Named as it was when it lived in `exchange/tasks.py`: deliveries queued under that name still find it.
@shared_task(name="exchange.tasks.deliver_webhook", bind=True, max_retries=None, acks_late=True)
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
