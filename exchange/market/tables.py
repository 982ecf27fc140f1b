"""Public market data read from the committed state: the aggregated book, recent trades, the 24 h ticker, and
the klines (candles) of any interval."""

from datetime import datetime, timedelta

from django.db import connection
from django.db.models import Count, F, Max, Min, QuerySet, Sum, Value
from django.db.models.functions import Coalesce

from exchange.models import Order, Trade, TradingPair

TICKER_WINDOW = timedelta(hours=24)


def depth(pair: TradingPair, limit: int) -> dict:
    """The best `limit` price levels of each side with their total remaining quantity.

    Both sides are read by one statement (one snapshot), so the answer is never a book crossed by a batch
    committed between two reads. Each side is an ordered scan of the `order_resting_book` partial index.
    """
    bids = price_levels(pair, Order.Side.BUY, "-price", limit)
    asks = price_levels(pair, Order.Side.SELL, "price", limit)
    levels = list(bids.union(asks, all=True))
    return {
        "pair": pair.symbol,
        "bids": sorted((level for level in levels if level["side"] == Order.Side.BUY),
                       key=lambda level: level["price"], reverse=True),
        "asks": sorted((level for level in levels if level["side"] == Order.Side.SELL),
                       key=lambda level: level["price"]),
    }


def price_levels(pair: TradingPair, side: str, ordering: str, limit: int) -> QuerySet:
    """The first `limit` price levels of one side of the resting book, in `ordering` (of `price`)."""
    resting = Order.objects.filter(pair=pair, side=side, status__in=Order.RESTING_STATUSES)
    levels = resting.values("side", "price").annotate(quantity=Sum(F("quantity") - F("filled_quantity")))
    # A slice makes Django wrap each side in parentheses inside the UNION, each with its own ORDER BY.
    return levels.order_by(ordering)[:limit]


def recent_trades(pair: TradingPair, limit: int) -> QuerySet[Trade]:
    """The pair's last `limit` trades, newest first."""
    return Trade.objects.filter(pair=pair).order_by("-sequence")[:limit]


def ticker(pair: TradingPair, now: datetime) -> dict:
    """Open, high, low and last price, base and quote volume and trade count of the 24 hours before `now`;
    the prices are None when nothing traded."""
    window_start = now - TICKER_WINDOW
    trades = Trade.objects.filter(pair=pair, executed_at__gt=window_start, executed_at__lte=now)
    figures = trades.aggregate(
        high=Max("price"), low=Min("price"), trade_count=Count("id"),
        base_volume=Coalesce(Sum("quantity"), Value(0, output_field=Trade._meta.get_field("quantity"))),
        quote_volume=Coalesce(Sum(F("price") * F("quantity")),
                              Value(0, output_field=Trade._meta.get_field("quantity"))),
        first_sequence=Min("sequence"), last_sequence=Max("sequence"),
    )
    prices = dict(trades.filter(sequence__in=[figures["first_sequence"], figures["last_sequence"]])
                  .values_list("sequence", "price"))
    return {
        "pair": pair.symbol,
        "open": prices.get(figures.pop("first_sequence")),
        "last": prices.get(figures.pop("last_sequence")),
        **figures,
        "window_start": window_start,
        "window_end": now,
    }


# The intervals klines are served in, as the exchanges name them; each starts on a multiple of its length since
# the epoch (a day at 00:00 UTC).
KLINE_INTERVALS = {"1m": 60, "5m": 300, "15m": 900, "30m": 1800, "1h": 3600, "4h": 14400, "1d": 86400}

KLINE_ROWS = (
    "SELECT extract(epoch FROM date_bin(make_interval(secs => %s), executed_at, 'epoch'::timestamptz))::bigint,"
    " (array_agg(price ORDER BY sequence))[1], max(price), min(price),"
    " (array_agg(price ORDER BY sequence DESC))[1], sum(quantity), sum(price * quantity), count(*), max(sequence)"
    " FROM exchange_trade WHERE pair_id = %s AND executed_at >= %s AND executed_at < %s"
    " GROUP BY 1 ORDER BY 1")


def kline_rows(pair_id: int, interval_seconds: int, start: datetime, end: datetime) -> list[tuple]:
    """The klines of the pair's trades executed in [start, end) of one interval, oldest first: (open time in
    epoch seconds, open, high, low, close, base volume, quote volume, trade count, last trade sequence).
    An interval without trades has no kline. Open and close are the first and last trades by sequence."""
    with connection.cursor() as cursor:
        cursor.execute(KLINE_ROWS, [interval_seconds, pair_id, start, end])
        return cursor.fetchall()
