"""The largest amounts the API accepts cannot stall a worker: lots and notionals beyond 64 bits and beyond
a price's or quantity's own precision are written exactly (an overflow there would fail the batch, and the
worker would retry it forever, holding up every pair of its shard)."""
from decimal import Decimal, localcontext

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from exchange.models import Order, Trade
from exchange.trading.pairs import ensure_demo_pairs
from matching_worker.worker import MatchingWorker
from tests.exchange.factories import make_live_worker

pytestmark = pytest.mark.django_db(transaction=True)

HUGE_PRICE = "99999999999999999999.99"          # 20 integer digits, BTCUSDT's tick of 0.01
HUGE_QUANTITY = "99999999999999999999.99999"    # 20 integer digits, BTCUSDT's lot of 0.00001: ~10^25 lots


def placed(username: str, side: str, quantity: str = HUGE_QUANTITY) -> int:
    """A BTCUSDT order at the largest price, placed through the API."""
    client = APIClient()
    client.force_authenticate(User.objects.get_or_create(username=username)[0])
    response = client.post("/api/orders/", {"pair": "BTCUSDT", "side": side, "price": HUGE_PRICE,
                                            "quantity": quantity}, format="json")
    assert response.status_code == 201, response.content
    return response.json()["id"]


def test_orders_at_the_largest_accepted_price_and_quantity_trade_and_are_written_exactly():
    ensure_demo_pairs()
    make_live_worker(0)             # the in-process worker below serves the shard
    maker, taker = placed("whale-seller", "sell"), placed("whale-buyer", "buy")
    worker = MatchingWorker(0)
    try:
        assert worker.process_batch() == 2
    finally:
        worker.close()

    trade = Trade.objects.get()
    assert (trade.maker_order_id, trade.taker_order_id) == (maker, taker)
    assert (trade.price, trade.quantity) == (Decimal(HUGE_PRICE), Decimal(HUGE_QUANTITY))
    for order in Order.objects.all():
        assert order.status == "filled"
        assert order.filled_quantity == Decimal(HUGE_QUANTITY)
        with localcontext(prec=60):                     # Python's default 28 digits would round it
            assert order.filled_notional == Decimal(HUGE_PRICE) * Decimal(HUGE_QUANTITY)
        assert order.average_fill_price == Decimal(HUGE_PRICE)


def one_batch_in_a_new_worker() -> None:
    """A worker that rebuilds its books from the database, as after a restart, then takes one batch."""
    worker = MatchingWorker(0)
    try:
        assert worker.process_batch()
    finally:
        worker.close()


def test_a_partly_filled_order_of_the_largest_size_reloads_exactly_after_a_restart():
    ensure_demo_pairs()
    make_live_worker(0)             # the in-process worker below serves the shard
    half = "49999999999999999999.99999"
    rest = str(Decimal(HUGE_QUANTITY) - Decimal(half))
    maker = placed("whale-seller", "sell", HUGE_QUANTITY)
    placed("whale-buyer", "buy", half)
    one_batch_in_a_new_worker()
    placed("whale-buyer", "buy", rest)
    one_batch_in_a_new_worker()                     # its book holds the maker as reloaded: filled and notional

    order = Order.objects.get(id=maker)
    assert (order.status, order.filled_quantity) == ("filled", Decimal(HUGE_QUANTITY))
    with localcontext(prec=60):
        assert order.filled_notional == Decimal(HUGE_PRICE) * Decimal(HUGE_QUANTITY)
    assert order.average_fill_price == Decimal(HUGE_PRICE)
