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

from django.conf import settings

log = logging.getLogger(__name__)
ACTOR = "celery:webhooks"
MAX_BACKOFF_SECONDS = 300


def notify(event: str, text: str, details: dict) -> None:
    """Queues the message's delivery to each configured receiver; never raises."""
    from exchange.tasks import deliver_webhook  # the task module imports the Celery app

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
