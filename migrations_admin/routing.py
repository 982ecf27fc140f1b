"""The control plane's websocket route (added to the exchange's by settings.WEBSOCKET_ROUTE_MODULES): the control
dashboard's live snapshot, behind the session middleware (staff only)."""
from channels.auth import AuthMiddlewareStack
from django.urls import path

from migrations_admin.consumers import ControlConsumer

websocket_urlpatterns = [
    path("ws/control/", AuthMiddlewareStack(ControlConsumer.as_asgi())),
]
