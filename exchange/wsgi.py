"""WSGI entry point, for HTTP-only servers; the exchange normally runs on ASGI (`exchange.asgi`)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exchange.settings")

application = get_wsgi_application()
