"""The REST market data (depth, recent trades, ticker) as the matching worker publishes it after each committed
batch (`exchange/market/contract.py`): the same state the websocket streams start from, read from Redis instead of
aggregating the order and trade tables on every request.

A pair whose state is not published (its worker has not loaded it yet, or Redis was emptied and no batch has
come since), or a Redis that does not answer, is answered from the tables (`exchange/market/tables.py`), so an
answer is never missing or wrong, only slower; `scripts/cache-warmup.sh` has the workers publish it.
"""
from __future__ import annotations

import json
import logging
from typing import cast

import redis
from django.utils import timezone

from exchange.api.serializers import represented
from exchange.listener import ChangeCache, listener
from exchange.market import tables
from exchange.market.contract import book_key, sequence_key, sorted_levels, ticker_key, trades_key
from exchange.market.serializers import DepthSerializer, TickerSerializer, TradeSerializer
from exchange.models import TradingPair
from exchange.stores import shared_redis

log = logging.getLogger(__name__)


def store() -> redis.Redis:
    """The published state's client: the process's shared one that reads text."""
    return shared_redis(decode_responses=True)


class DepthAnswers:
    """The depth as the API writes it, per pair and limit, read once per publication however many clients ask
    in between: the worker's publisher announces each one (NOTIFY `exchange_published`, after writing Redis), and
    the process's listener counts them. The tables' depth, for a pair not published, is kept until the worker
    announces the pair's next batch. (A GET of the published sequence per request instead cost 2,200 → 1,500
    depth requests/s.)"""

    def __init__(self) -> None:
        self.published: ChangeCache[tuple[int, str, int], dict] = ChangeCache(
            self._published_depth, lambda key: listener.published_generation(key[0]))
        self.from_tables: ChangeCache[tuple[TradingPair, int], dict] = ChangeCache(
            lambda key: represented(DepthSerializer, [tables.depth(*key)])[0],
            lambda key: listener.results_generation(key[0].id))

    def get(self, pair: TradingPair, limit: int) -> dict:
        try:
            depth = self.published.get((pair.id, pair.symbol, limit))
        except redis.RedisError as error:
            _unpublished(error)
            depth = None
        # The tables always answer: their depth is never None.
        return depth if depth is not None else cast(dict, self.from_tables.get((pair, limit)))

    @staticmethod
    def _published_depth(key: tuple[int, str, int]) -> dict | None:
        _, symbol, limit = key
        sequence, depth = published_depth(symbol, limit)
        return depth if sequence is not None else None

    def clear(self) -> None:
        self.published.clear()
        self.from_tables.clear()


def published_depth(symbol: str, limit: int) -> tuple[str, dict]:
    """The published sequence and the best `limit` levels of each side, read in one transaction."""
    with store().pipeline(transaction=True) as pipeline:
        pipeline.get(sequence_key(symbol))
        pipeline.hgetall(book_key(symbol, "buy"))
        pipeline.hgetall(book_key(symbol, "sell"))
        sequence, bids, asks = pipeline.execute()
    return sequence, {"pair": symbol, "bids": _levels(sorted_levels(bids, "buy", limit)),
                      "asks": _levels(sorted_levels(asks, "sell", limit))}


def _levels(levels: list[tuple[str, str]]) -> list[dict]:
    return [{"price": price, "quantity": quantity} for price, quantity in levels]


def recent_trades(pair: TradingPair, limit: int) -> list[dict]:
    """The pair's last `limit` trades, newest first, as the API writes them."""
    try:
        with store().pipeline(transaction=True) as pipeline:
            pipeline.get(sequence_key(pair.symbol))
            pipeline.lrange(trades_key(pair.symbol), 0, limit - 1)
            sequence, trades = pipeline.execute()
    except redis.RedisError as error:
        _unpublished(error)
        sequence = None
    if sequence is None:
        return represented(TradeSerializer, tables.recent_trades(pair, limit))
    return [json.loads(trade) for trade in trades]


def ticker(pair: TradingPair) -> dict:
    """The pair's ticker of the last 24 hours to the minute, as published after its last batch or when the
    minute turned."""
    try:
        published = store().get(ticker_key(pair.symbol))
    except redis.RedisError as error:
        _unpublished(error)
        published = None
    if published is None:
        return represented(TickerSerializer, [tables.ticker(pair, timezone.now())])[0]
    return json.loads(published)


def _unpublished(error: redis.RedisError) -> None:
    log.warning("published market data unreadable; answering from the tables", extra={
        "event": "market_data_unpublished", "error": str(error)})


depth_answers = DepthAnswers()
