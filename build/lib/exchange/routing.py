"""Websocket routes: public market data per pair, and a user's own order updates.

Only the private stream goes through the session and token middleware: the public one needs no user, and the
session middleware's wrapper around every send was 8% of a market data process's time (py-spy, 100 clients)."""

from channels.auth import AuthMiddlewareStack
from django.urls import path

from exchange.authentication import WebsocketTokenMiddleware
from exchange.consumers import MarketDataConsumer, OrderUpdatesConsumer

websocket_urlpatterns = [
    path("ws/market/<str:pair>/", MarketDataConsumer.as_asgi()),
    path("ws/orders/", AuthMiddlewareStack(WebsocketTokenMiddleware(OrderUpdatesConsumer.as_asgi()))),
]
