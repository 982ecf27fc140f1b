"""The exchange Django project: settings, trading pairs, the HTTP and websocket entry points."""

from exchange.celery import app as celery_app

__all__ = ["celery_app"]
