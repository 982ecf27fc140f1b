"""A pair created while its shard's worker serves is served by that worker at once, without a restart; a
pair of another shard is left to that shard's worker."""
from decimal import Decimal

import pytest
from django.db import connection, transaction

from exchange.models import EngineState, Order, Trade, TradingPair
from tests.integration.conftest import wait_until
from tests.integration.order_stream import prepare_market

pytestmark = pytest.mark.django_db(transaction=True)


def place(pair: TradingPair, owner, side: str, price: str) -> Order:
    """An order committed to the inbox as the API commits it: the row, then the NOTIFY."""
    with transaction.atomic():
        order = Order.objects.create(owner=owner, pair=pair, side=side, price=Decimal(price), quantity=Decimal("1"))
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify('exchange_inbox', %s)", [str(pair.shard)])
    return order


def new_pair(symbol: str, shard: int) -> TradingPair:
    return TradingPair.objects.create(symbol=symbol, base_asset=symbol[:-4], quote_asset="USDT",
                                      tick_size=Decimal("0.01"), lot_size=Decimal("0.1"), shard=shard)


def test_a_pair_added_while_the_worker_serves_trades_without_a_restart(worker):
    users = prepare_market()
    worker.start()
    worker.wait_ready()
    pid = worker.process.pid

    pair = new_pair("SOLUSDT", shard=0)
    elsewhere = new_pair("XRPUSDT", shard=1)
    maker = place(pair, users[1], "sell", "150.00")
    taker = place(pair, users[2], "buy", "150.00")
    stranger = place(elsewhere, users[1], "buy", "0.50")
    wait_until(lambda: not Order.objects.filter(pair=pair, status="pending").exists(), timeout=30,
               message="the worker to take the new pair's orders")

    assert worker.process.pid == pid and worker.running()
    trade = Trade.objects.get(pair=pair)
    assert (trade.maker_order_id, trade.taker_order_id, trade.price) == (maker.id, taker.id, Decimal("150.00"))
    assert EngineState.objects.filter(pair=pair).exists()
    stranger.refresh_from_db()
    assert stranger.status == "pending"                    # shard 1's worker takes it, not this one
    assert not EngineState.objects.filter(pair=elsewhere).exists()
    assert worker.stop() == 0
