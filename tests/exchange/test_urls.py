"""The API's route names are part of what operators see: they are the `view` label of the HTTP metrics that
dashboards and alerts filter on, so moving a view to another module must not rename its route."""
import pytest
from django.urls import reverse


@pytest.mark.parametrize(("name", "args", "path"), [
    ("order-list", [], "/api/orders/"),
    ("order-batch", [], "/api/orders/batch/"),
    ("order-detail", [7], "/api/orders/7/"),
    ("order-cancel", [7], "/api/orders/7/cancel/"),
    ("pair-list", [], "/api/pairs/"),
    ("pair-detail", ["BTCUSDT"], "/api/pairs/BTCUSDT/"),
    ("pair-depth", ["BTCUSDT"], "/api/pairs/BTCUSDT/depth/"),
    ("pair-trades", ["BTCUSDT"], "/api/pairs/BTCUSDT/trades/"),
    ("pair-ticker", ["BTCUSDT"], "/api/pairs/BTCUSDT/ticker/"),
    ("pair-klines", ["BTCUSDT"], "/api/pairs/BTCUSDT/klines/"),
])
def test_each_route_keeps_its_name(name, args, path):
    assert reverse(name, args=args) == path
