"""The web process's listener: what the process caches (pairs, tokens, depth) is dropped as soon as a change is
committed anywhere, and nothing cached survives a lost listener connection."""
import time
from decimal import Decimal

import pytest
from django.db import connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from exchange.inbox import announce_results
from exchange.listener import listener
from exchange.models import Order, TradingPair
from exchange.trading.pairs import pair_by_symbol
from tests.exchange.factories import make_resting_order

pytestmark = pytest.mark.django_db(transaction=True)
ORDER = {"pair": "BTCUSDT", "side": "buy", "price": "50000.01", "quantity": "0.5"}


def eventually(condition, seconds: float = 5.0) -> None:
    """The caches are dropped when the listener hears of the change: a few milliseconds after the commit."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the change was not heard"
        time.sleep(0.02)


def listener_listening() -> None:
    """Waits until the listener listens: only then does the process cache anything."""
    eventually(lambda: listener.generation() is not None)


def test_a_pair_halted_in_the_admin_refuses_orders_at_once(api, btc):
    listener_listening()
    assert api.post("/api/orders/", ORDER, format="json").status_code == 201     # the pair is now cached

    TradingPair.objects.filter(id=btc.id).update(status=TradingPair.Status.HALTED)

    eventually(lambda: api.post("/api/orders/", ORDER, format="json").status_code != 201)
    response = api.post("/api/orders/", ORDER, format="json")
    assert (response.status_code, response.json()["error"]["code"]) == (409, "pair_halted")


def test_a_deleted_token_is_refused_at_once(api, user, btc):
    listener_listening()
    assert api.get("/api/orders/").status_code == 200                           # the token is now cached

    Token.objects.filter(user=user).delete()

    eventually(lambda: api.get("/api/orders/").status_code == 401)


def test_a_deactivated_user_is_refused_at_once(api, user, btc):
    listener_listening()
    assert api.get("/api/orders/").status_code == 200

    type(user).objects.filter(id=user.id).update(is_active=False)

    eventually(lambda: api.get("/api/orders/").status_code == 401)


def test_the_depth_is_read_again_after_the_worker_announces_a_batch(user, btc):
    public = APIClient()
    listener_listening()
    assert public.get("/api/pairs/BTCUSDT/depth/").json()["bids"] == []
    make_resting_order(user, btc, side="buy", price="49000", quantity="2")
    # No announcement yet: the cached depth stands (the book only changes in the worker's batches).
    assert public.get("/api/pairs/BTCUSDT/depth/").json()["bids"] == []

    announce_results(btc.id)

    eventually(lambda: public.get("/api/pairs/BTCUSDT/depth/").json()["bids"] != [])
    assert public.get("/api/pairs/BTCUSDT/depth/").json()["bids"] == [{"price": "49000", "quantity": "2"}]


def test_nothing_cached_survives_a_lost_listener_connection(btc):
    listener_listening()
    assert pair_by_symbol("BTCUSDT").min_notional == btc.min_notional
    with connection.cursor() as cursor:
        # The change lands while the listener is gone: its notification is lost with the connection.
        cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                       " WHERE pid <> pg_backend_pid() AND query LIKE 'LISTEN%%'")
        cursor.execute("ALTER TABLE exchange_tradingpair DISABLE TRIGGER exchange_pairs_changed")
        try:
            TradingPair.objects.filter(id=btc.id).update(min_notional=Decimal("123"))
        finally:
            cursor.execute("ALTER TABLE exchange_tradingpair ENABLE TRIGGER exchange_pairs_changed")

    eventually(lambda: pair_by_symbol("BTCUSDT").min_notional == Decimal("123"))


def test_an_order_placed_while_the_cache_is_warm_is_committed_for_the_right_pair(api, pairs):
    for pair in ("BTCUSDT", "ETHUSDT", "BTCUSDT"):
        assert api.post("/api/orders/", {**ORDER, "pair": pair}, format="json").status_code == 201

    assert list(Order.objects.order_by("id").values_list("pair__symbol", flat=True)) == [
        "BTCUSDT", "ETHUSDT", "BTCUSDT"]
