"""The back-office screens of orders, requests, trades, the audit log, engine states and heartbeats: each
lists and filters, none can add, change or delete."""

from decimal import Decimal

import pytest
from django.contrib.auth.models import User

from exchange.models import Divergence, Order, Trade, TradingPair
from tests.exchange.factories import make_order, make_resting_order, make_trade

READ_ONLY_MODELS = ["order", "orderrequest", "trade", "auditlog", "enginestate", "workerheartbeat",
                    "divergence", "healthsample"]


@pytest.fixture
def operator_client(client, db):
    client.force_login(User.objects.create_superuser("operator", "operator@example.com", None))
    return client


@pytest.fixture
def trading(user, btc):
    maker = make_resting_order(user, btc, side="sell", price="100", quantity="1")
    taker = make_order(user, btc, side="buy", price="100", quantity="1", filled="1", status=Order.Status.FILLED)
    make_trade(btc, 1, "100", "1", maker=maker, taker=taker)


@pytest.mark.django_db
@pytest.mark.parametrize("model", READ_ONLY_MODELS)
def test_the_screen_lists_rows(operator_client, trading, model):
    response = operator_client.get(f"/backoffice/exchange/{model}/")

    assert response.status_code == 200


@pytest.mark.django_db
def test_orders_filter_by_pair_and_status(operator_client, trading, btc):
    response = operator_client.get(f"/backoffice/exchange/order/?pair__id__exact={btc.id}&status__exact=filled")

    assert response.status_code == 200
    assert response.context["cl"].result_count == 1


@pytest.mark.django_db
@pytest.mark.parametrize("model", READ_ONLY_MODELS)
def test_nothing_can_be_added_by_hand(operator_client, model):
    response = operator_client.get(f"/backoffice/exchange/{model}/add/")

    assert response.status_code == 403


def pair_form(pair, **changes) -> dict:
    fields = {"symbol": pair.symbol, "base_asset": pair.base_asset, "quote_asset": pair.quote_asset,
              "tick_size": pair.tick_size, "lot_size": pair.lot_size, "min_notional": pair.min_notional,
              "status": pair.status, "shard": pair.shard}
    return {**fields, **changes}


@pytest.mark.django_db
def test_a_pairs_grid_and_shard_cannot_change_once_it_exists(operator_client, btc):
    """The worker's book is in ticks and lots of the grid it loaded: a new grid would rescale every later
    fill, and a new shard would have two workers serve one book. Halting stays an edit away."""
    before = (btc.symbol, btc.tick_size, btc.lot_size, btc.shard)
    response = operator_client.post(f"/backoffice/exchange/tradingpair/{btc.id}/change/",
                                    pair_form(btc, symbol="XBTUSDT", tick_size="0.5", lot_size="1", shard=3,
                                              status="halted"))

    assert response.status_code == 302
    btc.refresh_from_db()
    assert (btc.symbol, btc.tick_size, btc.lot_size, btc.shard) == before
    assert btc.status == "halted"


@pytest.mark.django_db
def test_an_operator_adds_a_pair_with_its_grid_and_shard(operator_client):
    response = operator_client.post("/backoffice/exchange/tradingpair/add/", {
        "symbol": "SOLUSDT", "base_asset": "SOL", "quote_asset": "USDT", "tick_size": "0.01",
        "lot_size": "0.001", "min_notional": "5", "status": "trading", "shard": 2})

    assert response.status_code == 302
    pair = TradingPair.objects.get(symbol="SOLUSDT")
    assert (pair.tick_size, pair.lot_size, pair.shard) == (Decimal("0.01"), Decimal("0.001"), 2)


@pytest.mark.django_db
def test_orders_and_trades_read_in_their_pairs_precision_and_assets(operator_client, user, btc):
    order = make_order(user, btc, side="sell", price="50000", quantity="0.01")
    maker = make_resting_order(user, btc, side="sell", price="50000.5", quantity="1")
    trade = make_trade(btc, 7, "50000.5", "0.25", maker=maker, taker=order)
    grid = (f"{btc.tick_size.normalize():f}", f"{btc.lot_size.normalize():f}")

    assert str(order) == f"BTCUSDT sell {btc.quantity_text(Decimal('0.01'))} @ {btc.price_text(Decimal('50000'))} " \
        f"(order {order.id})"
    assert btc.price_text(Decimal("50000")) == "50,000.00 USDT" and grid[0] == "0.01"
    assert str(trade).startswith("BTCUSDT trade 7: ") and str(trade).endswith("@ 50,000.50 USDT")
    listing = operator_client.get("/backoffice/exchange/order/").content.decode()
    assert "50,000.00 USDT" in listing and btc.quantity_text(Decimal("0.01")) in listing


@pytest.mark.django_db
def test_an_operator_finds_a_users_open_orders_and_a_pairs_trades_in_a_day(operator_client, trading, user, btc):
    open_orders = operator_client.get(f"/backoffice/exchange/order/?resting=yes&q={user.username}")
    trade = Trade.objects.get()
    day = trade.executed_at
    trades = operator_client.get(f"/backoffice/exchange/trade/?pair__id__exact={btc.id}&executed_at__year={day.year}"
                                 f"&executed_at__month={day.month}&executed_at__day={day.day}")

    assert [row.status for row in open_orders.context["cl"].result_list] == ["open"]
    assert list(trades.context["cl"].result_list) == [trade]


@pytest.mark.django_db
def test_divergences_are_browsable_and_link_both_books_side_by_side(operator_client, btc):
    divergence = Divergence.objects.create(pair=btc, kind="divergence", engine_sequence=12, command={"verb": "place"},
                                           legacy_events=[["accepted", 1]], adaptive_events=[["rejected", 1]])

    listing = operator_client.get("/backoffice/exchange/divergence/?kind__exact=divergence").content.decode()

    assert f"/control/BTCUSDT/#divergence-{divergence.id}" in listing
    page = operator_client.get("/control/BTCUSDT/").content.decode()
    assert f'id="divergence-{divergence.id}"' in page and "[&#x27;rejected&#x27;, 1]" in page
