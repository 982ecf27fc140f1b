"""Klines, the ticker and the REST market data read from the state the worker publishes in Redis."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from exchange.market.contract import sorted_levels
from exchange.market.published import store
from matching.units import PairUnits, amount_text
from matching_worker.market_stats import TICKER_MINUTES, Kline, MarketStats, minute_of
from matching_worker.publish import ANNOUNCE_PUBLISHED, MarketPublisher, PublishedMarket, committed_history
from tests.exchange.factories import make_order, make_resting_order, make_trade
from tests.exchange.test_listener import eventually, listener_listening

D = Decimal
NOON = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


# ---- the klines and the ticker the publisher keeps -----------------------------------------------
def stats_with(trades: list[tuple[datetime, int, str, str]]) -> MarketStats:
    stats = MarketStats("BTCUSDT", [], 0)
    for moment, sequence, price, quantity in trades:
        stats.add_trades(moment, [(sequence, D(price), D(quantity))])
    return stats


def test_a_kline_holds_its_minutes_trades_in_sequence_order():
    stats = stats_with([(NOON, 1, "100", "1"), (NOON + timedelta(seconds=10), 2, "103", "2"),
                        (NOON + timedelta(seconds=20), 3, "99", "0.5"), (NOON + timedelta(seconds=59), 4, "101", "1")])

    (kline,) = stats.klines.values()
    assert kline.as_json() == {"open_time": "2026-12-01T12:00:00Z", "interval": "1m", "open": "100", "high": "103",
                               "low": "99", "close": "101", "base_volume": "4.5", "quote_volume": "456.5",
                               "trade_count": 4}


def test_a_trade_counted_once_is_never_counted_again():
    stats = stats_with([(NOON, 1, "100", "1"), (NOON, 2, "101", "1")])

    assert stats.add_trades(NOON, [(2, D("101"), D("1")), (1, D("100"), D("1"))]) == []
    assert stats.ticker(NOON)["trade_count"] == 2


def test_the_ticker_covers_the_last_24_hours_to_the_minute():
    day_ago = NOON - timedelta(minutes=TICKER_MINUTES)
    stats = stats_with([(day_ago, 1, "90", "5"),                                   # one minute too old
                        (day_ago + timedelta(minutes=1), 2, "100", "1"),           # the window's first minute
                        (NOON - timedelta(hours=2), 3, "120", "0.5"),
                        (NOON + timedelta(seconds=30), 4, "95.5", "2")])

    ticker = stats.ticker(NOON + timedelta(seconds=30))

    assert {key: ticker[key] for key in ("open", "high", "low", "last", "base_volume", "quote_volume",
                                         "trade_count")} == {
        "open": "100", "high": "120", "low": "95.5", "last": "95.5", "base_volume": "3.5", "quote_volume": "351",
        "trade_count": 3}
    assert ticker["window_start"] == "2026-11-30T12:01:00Z"
    assert ticker["window_end"] == "2026-12-01T12:00:30Z"


def test_when_the_minute_turns_the_oldest_minute_leaves_the_ticker():
    stats = stats_with([(NOON, 1, "100", "1"), (NOON + timedelta(minutes=5), 2, "110", "1")])

    assert stats.advance(NOON + timedelta(minutes=TICKER_MINUTES)) is True
    ticker = stats.ticker(NOON + timedelta(minutes=TICKER_MINUTES))

    assert (ticker["open"], ticker["high"], ticker["low"], ticker["trade_count"]) == ("110", "110", "110", 1)
    assert list(stats.klines) == [minute_of(NOON + timedelta(minutes=5))]


def test_an_empty_window_has_no_prices():
    stats = stats_with([(NOON, 1, "100", "1")])
    stats.advance(NOON + timedelta(days=2))

    ticker = stats.ticker(NOON + timedelta(days=2))

    assert (ticker["open"], ticker["last"], ticker["base_volume"], ticker["trade_count"]) == (None, None, "0", 0)


def test_a_trade_of_the_minute_before_published_after_the_turn_still_counts():
    stats = stats_with([(NOON, 1, "100", "1")])
    stats.advance(NOON + timedelta(minutes=1))

    stats.add_trades(NOON + timedelta(seconds=59), [(2, D("130"), D("1"))])

    assert stats.ticker(NOON + timedelta(minutes=1))["high"] == "130"


# ---- klines over REST, from the trade table ----------------------------------------------------------
@pytest.fixture
def traded(user, btc):
    """Trades at hh:00:10, hh:00:50, hh:01:30 and hh:07:00 of the hour two hours ago (returned)."""
    maker = make_resting_order(user, btc, side="sell", price="100", quantity="10")
    taker = make_order(user, btc, side="buy", price="120", quantity="10")
    today = timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    for sequence, (seconds, price, quantity) in enumerate([(10, "100", "1"), (50, "102", "0.5"),
                                                           (90, "99", "2"), (420, "101", "1")], start=1):
        make_trade(btc, sequence, price, quantity, maker=maker, taker=taker,
                   executed_at=today + timedelta(seconds=seconds))
    return today


@pytest.mark.django_db
def test_klines_of_one_minute_are_served_oldest_first(anonymous_api, traded):
    end = (traded + timedelta(minutes=10)).isoformat()
    response = anonymous_api.get("/api/pairs/BTCUSDT/klines/", {"interval": "1m", "end": end, "limit": 10})

    assert response.status_code == 200
    assert [(k["open_time"][14:16], k["open"], k["high"], k["low"], k["close"], k["base_volume"], k["trade_count"])
            for k in response.json()] == [("00", "100", "102", "100", "102", "1.5", 2),
                                          ("01", "99", "99", "99", "99", "2", 1),
                                          ("07", "101", "101", "101", "101", "1", 1)]


@pytest.mark.django_db
def test_klines_of_longer_intervals_merge_the_minutes(anonymous_api, traded):
    end = (traded + timedelta(hours=1)).isoformat()
    (kline,) = anonymous_api.get("/api/pairs/BTCUSDT/klines/", {"interval": "1h", "end": end}).json()

    assert kline == {"open_time": traded.isoformat().replace("+00:00", "Z"), "interval": "1h", "open": "100",
                     "high": "102", "low": "99", "close": "101", "base_volume": "4.5", "quote_volume": "450",
                     "trade_count": 4}


@pytest.mark.django_db
def test_the_limit_counts_intervals_back_from_the_end(anonymous_api, traded):
    end = (traded + timedelta(minutes=8)).isoformat()
    klines = anonymous_api.get("/api/pairs/BTCUSDT/klines/", {"interval": "5m", "end": end, "limit": 1}).json()

    assert [kline["open_time"][14:16] for kline in klines] == ["05"]


@pytest.mark.django_db
@pytest.mark.parametrize("query", [{"interval": "2m"}, {"limit": "0"}, {"limit": "1001"}, {"end": "yesterday"}])
def test_a_bad_klines_query_is_refused(anonymous_api, btc, query):
    response = anonymous_api.get("/api/pairs/BTCUSDT/klines/", query)

    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == set(query)


@pytest.mark.django_db
def test_the_worker_loads_the_klines_the_api_serves(anonymous_api, btc, traded):
    trades, stats = committed_history(btc.id, "BTCUSDT")

    end = (traded + timedelta(minutes=10)).isoformat()
    served = anonymous_api.get("/api/pairs/BTCUSDT/klines/", {"interval": "1m", "end": end}).json()
    assert [kline.as_json() for kline in sorted(stats.klines.values(), key=lambda k: k.open_time)
            if kline.open_time >= traded.timestamp()] == served
    assert [trade["sequence"] for trade in trades] == [4, 3, 2, 1]
    assert stats.last_sequence == 4


# ---- REST reads the published state ------------------------------------------------------------------
def published_market(symbol: str = "BTCUSDT") -> PublishedMarket:
    """A market as the worker would publish it: bids 2 @ 99.5, asks 1.5 @ 101, one trade."""
    now = timezone.now()
    stats = MarketStats(symbol, [Kline(minute_of(now), D("100"), D("100"), D("100"), D("100"), D("1"), D("100"), 1,
                                       7)], 7)
    trade = {"sequence": 7, "price": "100", "quantity": "1", "taker_side": "buy",
             "executed_at": now.isoformat().replace("+00:00", "Z")}
    market = PublishedMarket(symbol, PairUnits(D("0.01"), D("0.00001")), 42, [trade], stats)
    market.set("buy", 9950, 200_000)
    market.set("sell", 10100, 150_000)
    return market


@pytest.fixture
def publisher():
    publisher = MarketPublisher()
    yield publisher
    publisher.close()


@pytest.mark.django_db
def test_depth_trades_and_ticker_are_read_from_the_published_state(anonymous_api, user, btc, publisher):
    make_resting_order(user, btc, side="buy", price="50", quantity="9")          # in the table, not published
    publisher._write_whole(store(), published_market())

    depth = anonymous_api.get("/api/pairs/BTCUSDT/depth/").json()
    trades = anonymous_api.get("/api/pairs/BTCUSDT/trades/").json()
    ticker = anonymous_api.get("/api/pairs/BTCUSDT/ticker/").json()

    assert depth == {"pair": "BTCUSDT", "bids": [{"price": "99.5", "quantity": "2"}],
                     "asks": [{"price": "101", "quantity": "1.5"}]}
    assert [(trade["sequence"], trade["price"]) for trade in trades] == [(7, "100")]
    assert (ticker["last"], ticker["trade_count"]) == ("100", 1)


def publish(publisher: MarketPublisher, market: PublishedMarket, pair_id: int) -> None:
    """As the worker's publisher does it: the state written, then announced to the web processes."""
    publisher._write_whole(store(), market)
    with connection.cursor() as cursor:
        cursor.execute(ANNOUNCE_PUBLISHED, [[pair_id]])


@pytest.mark.django_db(transaction=True)
def test_a_publication_is_read_once_announced_and_an_unpublished_pair_from_the_tables(anonymous_api, user, btc,
                                                                                      publisher):
    listener_listening()
    market = published_market()
    publish(publisher, market, btc.id)
    eventually(lambda: anonymous_api.get("/api/pairs/BTCUSDT/depth/").json()["bids"][0]["price"] == "99.5")

    market.set("buy", 9960, 100_000)
    market.sequence += 1
    publisher._write_whole(store(), market)
    # Not announced yet: the depth read at the last announcement stands.
    assert anonymous_api.get("/api/pairs/BTCUSDT/depth/").json()["bids"][0]["price"] == "99.5"
    with connection.cursor() as cursor:
        cursor.execute(ANNOUNCE_PUBLISHED, [[btc.id]])
    eventually(lambda: anonymous_api.get("/api/pairs/BTCUSDT/depth/").json()["bids"][0] == {
        "price": "99.6", "quantity": "1"})

    make_resting_order(user, btc, side="buy", price="50", quantity="9")
    store().delete(*store().scan_iter("md:BTCUSDT:*"))
    with connection.cursor() as cursor:
        cursor.execute(ANNOUNCE_PUBLISHED, [[btc.id]])
    eventually(lambda: anonymous_api.get("/api/pairs/BTCUSDT/depth/").json()["bids"] == [
        {"price": "50", "quantity": "9"}])


@given(st.lists(st.decimals(min_value=0, max_value=10**12, places=8, allow_nan=False, allow_infinity=False),
                unique=True, max_size=60), st.sampled_from(["buy", "sell"]), st.integers(1, 70))
def test_levels_are_ordered_by_price_as_decimals_would_order_them(prices, side, limit):
    levels = {amount_text(price): "1" for price in prices if price > 0}
    by_decimal = sorted(levels, key=Decimal, reverse=side == "buy")

    assert [price for price, _ in sorted_levels(levels, side)] == by_decimal
    assert [price for price, _ in sorted_levels(levels, side, limit)] == by_decimal[:limit]


# ---- the publication -------------------------------------------------------------------------------
def test_the_worker_publishes_where_the_channel_layer_delivers_a_group():
    """The publisher PUBLISHes a group's messages itself, inside its Redis transaction: a message sent so must
    reach a member of the group exactly as the layer's own `group_send` would have sent it."""
    import asyncio

    from channels.layers import get_channel_layer

    from exchange.market.contract import group_channel, market_group
    from matching_worker.publish import channel_layer_prefix

    layer = get_channel_layer()
    message = {"type": "market.update", "pair": "BTCUSDT", "sequence": 7, "bids": [["100", "1"]]}

    async def scenario() -> dict:
        channel = await layer.new_channel("test.")
        await layer.group_add(market_group("BTCUSDT"), channel)
        try:
            await asyncio.get_running_loop().run_in_executor(None, lambda: store().publish(
                group_channel(market_group("BTCUSDT"), channel_layer_prefix()), layer.serialize(message)))
            return await asyncio.wait_for(layer.receive(channel), 5)
        finally:
            await layer.group_discard(market_group("BTCUSDT"), channel)
            await layer.flush()

    assert asyncio.run(scenario()) == message
