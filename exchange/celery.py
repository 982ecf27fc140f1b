"""The Celery application; workers and beat run with `celery -A exchange`."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exchange.settings")

app = Celery("exchange")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

import exchange.ops.celery_metrics  # noqa: E402, F401 - connects the metrics to Celery's signals
