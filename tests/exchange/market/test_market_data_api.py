"""The public endpoints: pairs, and depth, trades and ticker figured from the rows in the database."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from exchange.market.tables import price_levels
from exchange.models import Order, TradingPair
from tests.exchange.factories import make_order, make_resting_order, make_trade


@pytest.mark.django_db
def test_the_pairs_are_public(anonymous_api, pairs):
    response = anonymous_api.get("/api/pairs/")

    assert response.status_code == 200
    assert [pair["symbol"] for pair in response.json()] == ["ADAUSDT", "BTCUSDT", "DOTUSDT", "ETHUSDT"]


@pytest.mark.django_db
def test_a_pair_shows_its_grid(anonymous_api, pairs):
    response = anonymous_api.get("/api/pairs/btcusdt/")

    assert response.json() == {"symbol": "BTCUSDT", "base_asset": "BTC", "quote_asset": "USDT", "tick_size": "0.01",
                               "lot_size": "0.00001", "min_notional": "10", "status": "trading"}


@pytest.mark.django_db
@pytest.mark.parametrize("suffix", ["", "depth/", "trades/", "ticker/"])
def test_an_unknown_pair_is_not_found(anonymous_api, pairs, suffix):
    response = anonymous_api.get(f"/api/pairs/DOGEUSDT/{suffix}")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "pair_not_found"


@pytest.fixture
def book(user, other_user, btc) -> TradingPair:
    """Bids 1.3 @ 100 (1 + 0.5 less 0.2 filled) and 2 @ 99; asks 0.7 @ 101 and 3 @ 105; plus orders that
    do not rest: pending, filled, cancelled."""
    make_resting_order(user, btc, side="buy", price="100", quantity="1")
    make_resting_order(other_user, btc, side="buy", price="100", quantity="0.5", filled="0.2")
    make_resting_order(user, btc, side="buy", price="99", quantity="2")
    make_resting_order(user, btc, side="sell", price="101", quantity="0.7")
    make_resting_order(other_user, btc, side="sell", price="105", quantity="3")
    make_order(user, btc, side="buy", price="100.5", quantity="9")
    make_order(user, btc, side="sell", price="100.5", quantity="9", filled="9", status=Order.Status.FILLED)
    make_order(user, btc, side="sell", price="102", quantity="9", status=Order.Status.CANCELLED)
    return btc


@pytest.mark.django_db
def test_depth_aggregates_the_resting_orders_best_prices_first(anonymous_api, book):
    response = anonymous_api.get("/api/pairs/BTCUSDT/depth/")

    assert response.json() == {
        "pair": "BTCUSDT",
        "bids": [{"price": "100", "quantity": "1.3"}, {"price": "99", "quantity": "2"}],
        "asks": [{"price": "101", "quantity": "0.7"}, {"price": "105", "quantity": "3"}],
    }


@pytest.mark.django_db
def test_depth_limits_the_levels_of_each_side(anonymous_api, book):
    response = anonymous_api.get("/api/pairs/BTCUSDT/depth/?limit=1")

    assert (response.json()["bids"], response.json()["asks"]) == (
        [{"price": "100", "quantity": "1.3"}], [{"price": "101", "quantity": "0.7"}])


@pytest.mark.django_db
@pytest.mark.parametrize("limit", ["0", "501", "many"])
def test_depth_rejects_a_bad_limit(anonymous_api, btc, limit):
    response = anonymous_api.get(f"/api/pairs/BTCUSDT/depth/?limit={limit}")

    assert response.status_code == 400
    assert "limit" in response.json()["error"]["fields"]


@pytest.mark.django_db
def test_depth_reads_the_resting_book_index(btc):
    sql, params = price_levels(btc, Order.Side.BUY, "-price", 20).query.sql_with_params()
    with connection.cursor() as cursor:
        # With few rows a sequential scan is cheaper; forbid it to learn whether the index can serve the query.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())

    assert "order_resting_book" in plan


@pytest.mark.django_db
def test_trades_are_the_recent_ones_newest_first(anonymous_api, user, btc):
    maker = make_resting_order(user, btc, side="sell", price="100", quantity="5")
    taker = make_order(user, btc, side="buy", price="101", quantity="5", status=Order.Status.FILLED, filled="5")
    for sequence, price in [(1, "100"), (2, "100.5"), (3, "101")]:
        make_trade(btc, sequence, price, "1", maker=maker, taker=taker)

    response = anonymous_api.get("/api/pairs/BTCUSDT/trades/?limit=2")

    assert [(trade["sequence"], trade["price"], trade["quantity"], trade["taker_side"])
            for trade in response.json()] == [(3, "101", "1", "buy"), (2, "100.5", "1", "buy")]


@pytest.mark.django_db
def test_the_ticker_sums_up_the_last_24_hours(anonymous_api, user, btc):
    maker = make_resting_order(user, btc, side="sell", price="100", quantity="10")
    taker = make_order(user, btc, side="buy", price="120", quantity="10", status=Order.Status.FILLED, filled="10")
    now = timezone.now()
    make_trade(btc, 1, "90", "5", maker=maker, taker=taker, executed_at=now - timedelta(hours=25))
    make_trade(btc, 2, "100", "1", maker=maker, taker=taker, executed_at=now - timedelta(hours=23))
    make_trade(btc, 3, "120", "0.5", maker=maker, taker=taker, executed_at=now - timedelta(hours=2))
    make_trade(btc, 4, "95.5", "2", maker=maker, taker=taker, executed_at=now - timedelta(minutes=1))

    ticker = anonymous_api.get("/api/pairs/BTCUSDT/ticker/").json()

    assert {key: ticker[key] for key in ("open", "high", "low", "last", "base_volume", "quote_volume",
                                         "trade_count")} == {
        "open": "100", "high": "120", "low": "95.5", "last": "95.5", "base_volume": "3.5",
        "quote_volume": "351", "trade_count": 3,
    }


@pytest.mark.django_db
def test_the_ticker_of_a_pair_without_trades_has_no_prices(anonymous_api, btc):
    ticker = anonymous_api.get("/api/pairs/BTCUSDT/ticker/").json()

    assert {key: ticker[key] for key in ("open", "high", "low", "last", "base_volume", "quote_volume",
                                         "trade_count")} == {
        "open": None, "high": None, "low": None, "last": None, "base_volume": "0", "quote_volume": "0",
        "trade_count": 0,
    }


@pytest.mark.django_db
def test_the_tickers_volumes_are_exact_at_the_largest_amounts(anonymous_api, user, btc):
    price, quantity = "99999999999999999999.99", "99999999999999999999.99999"
    maker = make_resting_order(user, btc, side="sell", price=price, quantity=quantity)
    taker = make_order(user, btc, side="buy", price=price, quantity=quantity, status=Order.Status.FILLED)
    make_trade(btc, 1, price, quantity, maker=maker, taker=taker)
    make_trade(btc, 2, "0.01", "0.00001", maker=maker, taker=taker)

    ticker = anonymous_api.get("/api/pairs/BTCUSDT/ticker/").json()

    # 99999999999999999999.99 × 99999999999999999999.99999 + 0.01 × 0.00001, every one of its 47 digits
    assert ticker["quote_volume"] == "9999999999999999999998999000000000000000.0000002"
    assert ticker["base_volume"] == "100000000000000000000"
