"""WSGI entry point: the HTTP server (`make run` serves it with Granian); websockets go through `exchange.asgi`."""

import gc
import os

from django.core.wsgi import get_wsgi_application

from exchange.serving.production import refuse_unsafe_production

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exchange.settings")

application = get_wsgi_application()
refuse_unsafe_production()

# The objects of the start-up (Django, DRF, the URL patterns) live as long as the process: moved out of the
# collector's reach, full collections no longer walk them (about a tenth less CPU per placement, measured).
gc.collect()
gc.freeze()
