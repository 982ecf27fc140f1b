"""Websocket routes: public market data per pair, and a user's own order updates."""

from django.urls import path

from exchange.consumers import MarketDataConsumer, OrderUpdatesConsumer

websocket_urlpatterns = [
    path("ws/market/<str:pair>/", MarketDataConsumer.as_asgi()),
    path("ws/orders/", OrderUpdatesConsumer.as_asgi()),
]
