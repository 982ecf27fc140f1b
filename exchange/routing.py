"""Websocket routes: public market data per pair, and a user's own order updates.

Only the private stream goes through the session and token middleware: the public one needs no user, and the
session middleware's wrapper around every send was 8% of a market data process's time (py-spy, 100 clients)."""

from channels.auth import AuthMiddlewareStack
from django.conf import settings
from django.urls import path
from django.utils.module_loading import import_string

from exchange.api.authentication import WebsocketTokenMiddleware
from exchange.market.streams import MarketDataConsumer, OrderUpdatesConsumer

websocket_urlpatterns = [
    path("ws/market/<str:pair>/", MarketDataConsumer.as_asgi()),
    path("ws/orders/", AuthMiddlewareStack(WebsocketTokenMiddleware(OrderUpdatesConsumer.as_asgi()))),
    # Other apps' routes, named in settings (the exchange does not import the control plane).
    *(route for module in settings.WEBSOCKET_ROUTE_MODULES
      for route in import_string(f"{module}.websocket_urlpatterns")),
]
