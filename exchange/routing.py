"""Websocket URL routes; the market-data and order-update consumers are added here."""

websocket_urlpatterns: list = []
