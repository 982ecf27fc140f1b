"""Publishing a committed batch's market data: the pairs' book state and recent trades in Redis, then the
updates on the channel layer (`exchange/market/contract.py` is the contract).

A thread of its own does it, fed in commit order: the engines' thread only hands over what the batch changed
(levels in ticks and lots, the batch's trade and order rows), and the Decimal text, the Redis writes, the
checksum, the klines, the ticker and the messages happen here. Nothing is published before its batch has
committed, so a client never sees a trade that a crash undoes; a batch committed but not yet published when the
worker dies is covered by the snapshot the restarted worker publishes for each pair it loads.

A batch's messages are PUBLISHed in the Redis transaction that writes the state they describe, where
channels-redis's pub/sub layer carries its groups' messages: one round trip for both, and a subscriber that
reads the state after a message has arrived finds the state the message leads to. Through the layer's own
`group_send`, the publication was a second round trip on an event loop of its own, a third of this thread's
time (py-spy, 5,000 orders/s).

The publisher keeps every pair's published state in memory too (levels, recent trades, the klines of the ticker
window), so it can write the whole state again at any time without reading the database: when it finds the
state in Redis gone (Redis restarted empty) and when an operator asks for it (`republish`, the cache warm-up).
"""
from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections import deque
from datetime import UTC, datetime
from typing import Any

import redis
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from sortedcontainers import SortedDict

from exchange.inbox import PUBLISHED_CHANNEL
from exchange.market.contract import (
    MARKET_SNAPSHOT,
    MARKET_TICKER,
    MARKET_UPDATE,
    ORDERS_UPDATE,
    RECENT_TRADES,
    book_key,
    checksum,
    group_channel,
    iso_time,
    kline_key,
    listening_owners_key,
    market_group,
    orders_group,
    sequence_key,
    ticker_key,
    trades_key,
    written_whole_key,
)
from exchange.market.tables import kline_rows
from exchange.stores import redis_client
from matching.units import PairUnits, amount_text
from matching_worker.batch import Batch
from matching_worker.market_stats import MINUTE, Kline, MarketStats, window_start_for
from matching_worker.metrics import WorkerMetrics
from matching_worker.pairs import PairRuntime

log = logging.getLogger("matching_worker")
CHECKSUM_DEPTH = 10
# In a transaction of its own, which writes nothing (see `exchange/inbox.py`).
ANNOUNCE_PUBLISHED = "SELECT pg_notify('" + PUBLISHED_CHANNEL + "', pair_id::text) FROM unnest(%s::bigint[]) AS pair_id"


class PublishedMarket:
    """A pair's market as published: the levels' totals in lots by ticks (kept sorted for the checksum), the
    recent trades as the API writes them (newest first) and the klines and ticker."""

    def __init__(self, symbol: str, units: PairUnits, sequence: int, trades: list[dict], stats: MarketStats) -> None:
        self.symbol = symbol
        self.units = units
        self.sequence = sequence
        self.bids: SortedDict = SortedDict()     # -ticks -> lots: best (highest) first
        self.asks: SortedDict = SortedDict()     # ticks -> lots: best (lowest) first
        self.trades: deque = deque(trades, maxlen=RECENT_TRADES)
        self.stats = stats

    def set(self, side: str, ticks: int, lots: int) -> None:
        levels, key = (self.bids, -ticks) if side == "buy" else (self.asks, ticks)
        if lots:
            levels[key] = lots
        else:
            levels.pop(key, None)

    def text(self, ticks: int, lots: int) -> tuple[str, str]:
        return self.units.price_text(ticks), self.units.quantity_text(lots)

    def side_text(self, side: str, depth: int | None = None) -> list[tuple[str, str]]:
        levels = self.bids if side == "buy" else self.asks
        keys = levels.keys() if depth is None else levels.islice(0, depth)
        return [self.text(abs(key), levels[key]) for key in keys]

    def checksum(self) -> int:
        return checksum(self.side_text("buy", CHECKSUM_DEPTH), self.side_text("sell", CHECKSUM_DEPTH))


class MarketPublisher:
    """Publishes in the order batches are handed over; `close` publishes what is queued, then stops."""

    def __init__(self, metrics: WorkerMetrics | None = None) -> None:
        self.metrics = metrics                 # None: not counted (tests)
        self.queue: queue.Queue = queue.Queue()
        self.markets: dict[int, PublishedMarket] = {}
        self.written: set[int] = set()         # the pairs whose published state the item in hand changed
        self.layer = get_channel_layer()       # how its messages are serialized
        self.channel_prefix = channel_layer_prefix()
        self.thread = threading.Thread(target=self._run, name="market-publisher", daemon=True)
        self.thread.start()

    def reset(self, runtime: PairRuntime) -> None:
        """The pair as just loaded from the database (no batch of it in flight): its whole market is published
        again, the recent trades and the klines of the ticker window read from the trade table."""
        market = PublishedMarket(runtime.symbol, runtime.units, runtime.engine.sequence,
                                 *committed_history(runtime.pair_id, runtime.symbol))
        levels: dict[tuple[str, int], int] = {}
        for order in runtime.engine.snapshot().resting:
            levels[order.side, order.price] = levels.get((order.side, order.price), 0) + order.quantity
        for (side, ticks), lots in levels.items():
            market.set(side, ticks, lots)
        self.queue.put(("snapshot", runtime.pair_id, market))

    def publish(self, batch: Batch, committed_at: float) -> None:
        """A committed batch, committed at `committed_at` (epoch seconds)."""
        self.queue.put(("batch", batch, committed_at))

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join(10)

    # ---- the publisher's thread --------------------------------------------------------------------
    def _run(self) -> None:
        store = redis_client(timeout=None)
        minute_handled = int(time.time() // MINUTE)
        while True:
            try:
                item = self.queue.get(timeout=MINUTE - time.time() % MINUTE + 0.001)
            except queue.Empty:
                item = ("idle",)
            if item is None:
                break
            self._handle(store, item)
            # The minute's turn comes whatever the traffic: a queue never empty for a whole minute must not hold
            # back the tickers of the quiet pairs.
            if int(time.time() // MINUTE) != minute_handled:
                minute_handled = int(time.time() // MINUTE)
                self._handle(store, ("minute",))
        connection.close()

    def _handle(self, store: redis.Redis, item: tuple) -> None:
        try:
            self._apply(store, item)
            self._announce_written()
        except Exception:  # noqa: BLE001 - a publishing failure must never stop matching; clients resync
            log.exception("market data not published", extra={"event": "publish_failed"})
            if self.metrics is not None:
                self.metrics.error("publish_failed")
            connection.close()

    def _announce_written(self) -> None:
        """Tells the web processes which pairs' published state changed (their REST depth is read again)."""
        if self.written:
            with connection.cursor() as cursor:
                cursor.execute(ANNOUNCE_PUBLISHED, [sorted(self.written)])
            self.written.clear()

    def _publish(self, pipeline, messages: list[tuple[str, dict]]) -> None:
        """Adds the messages' publication to `pipeline`, stamped as leaving now. Each goes to a group of its own
        (a pair, an owner), so their order among themselves is free; a batch's messages all leave before the next
        batch's."""
        published_at = time.time()
        for group, message in messages:
            message["published_at"] = published_at
            pipeline.publish(group_channel(group, self.channel_prefix), self.layer.serialize(message))

    def _apply(self, store: redis.Redis, item: tuple) -> None:
        if item[0] == "snapshot":
            _, pair_id, market = item
            self.markets[pair_id] = market
            market.stats.advance(datetime.now(UTC))
            self.written.add(pair_id)
            self._write_whole(store, market)
        elif item[0] == "minute":
            self._turn_minute(store)
        elif item[0] == "batch":
            _, batch, committed_at = item
            listening = self._publish_batch(store, batch, committed_at)
            self._publish_order_updates(store, batch, listening, committed_at)

    def _publish_batch(self, store: redis.Redis, batch: Batch, committed_at: float) -> set[int]:
        """Writes and publishes the batch's changes of each pair in one transaction, which first reads the
        sequences the pairs are at and who listens to order updates (one round trip in all: three took 1.7 ms at
        p50, at 5,000 orders/s). Returns the owners listening."""
        changed = [(self.markets[changes.pair_id], changes) for changes in batch.market
                   if changes.pair_id in self.markets]
        executed_at = iso_time(batch.now)
        published_last = [market.sequence for market, _ in changed]
        with store.pipeline(transaction=True) as pipeline:
            pipeline.hgetall(listening_owners_key())
            for market, _ in changed:
                pipeline.get(sequence_key(market.symbol))
            updates = [self._update(pipeline, market, changes, batch, executed_at, committed_at)
                       for market, changes in changed]
            self._publish(pipeline, [update for update in updates if update is not None])
            results = pipeline.execute()
        self._count(committed_at, updates)
        listening = {int(owner) for owner, streams in results[0].items() if int(streams) > 0}
        held = results[1:1 + len(changed)]
        for (market, changes), value, last, update in zip(changed, held, published_last, updates, strict=True):
            # Nobody else writes a pair's state, so a sequence in Redis other than the one published last means
            # the state there is gone (Redis restarted empty) or was never written: it is written whole again,
            # and its snapshot follows the update (a client that applied the update keeps the same book).
            if value is None or int(value) != last or changes.republish:
                self._write_whole(store, market)
                self.written.add(changes.pair_id)
            elif update is not None:
                self.written.add(changes.pair_id)
        return listening

    def _count(self, committed_at: float, updates: list[tuple[str, dict] | None]) -> None:
        """The publication's latency and the level changes and trades it carried."""
        if self.metrics is None:
            return
        published = [message for _, message in filter(None, updates)]
        if published:
            self.metrics.market_data_latency.observe(published[0]["published_at"] - committed_at)
        for message in published:
            self.metrics.market_data_updates.labels(message["pair"]).inc(
                len(message["bids"]) + len(message["asks"]) + len(message["trades"]))

    def _update(self, pipeline, market: PublishedMarket, changes, batch: Batch, executed_at: str,
                committed_at: float) -> tuple[str, dict] | None:
        """Applies the batch's changes of one market to its state, and to Redis through `pipeline`; returns the
        update message, or None when nothing public changed."""
        trades = [(row[1], row[4], row[5], row[6]) for row in batch.trades if row[0] == changes.pair_id]
        if not changes.levels and not trades:
            return None
        changed: dict[str, list] = {"buy": [], "sell": []}
        kept: dict[str, dict[str, str]] = {"buy": {}, "sell": {}}
        gone: dict[str, list[str]] = {"buy": [], "sell": []}
        for (side, ticks), lots in changes.levels.items():
            market.set(side, ticks, lots)
            price, quantity = market.text(ticks, lots)
            changed[side].append((price, quantity))
            if lots:
                kept[side][price] = quantity
            else:
                gone[side].append(price)
        for side in ("buy", "sell"):      # a command per side, not per level: a batch changes dozens of levels
            if kept[side]:
                pipeline.hset(book_key(market.symbol, side), mapping=kept[side])
            if gone[side]:
                pipeline.hdel(book_key(market.symbol, side), *gone[side])
        previous, market.sequence = market.sequence, changes.sequence
        trade_texts = [{"sequence": sequence, "price": amount_text(price), "quantity": amount_text(quantity),
                        "taker_side": taker_side, "executed_at": executed_at}
                       for sequence, price, quantity, taker_side in trades]
        market.trades.extendleft(trade_texts[-RECENT_TRADES:])
        klines = market.stats.add_trades(batch.now, [(sequence, price, quantity)
                                                     for sequence, price, quantity, _ in trades])
        ticker = market.stats.ticker(batch.now) if trades else None
        kline_texts = [kline.as_json() for kline in klines]
        symbol = market.symbol
        pipeline.set(sequence_key(symbol), market.sequence)
        if trade_texts:      # only the newest RECENT_TRADES are kept: a big batch writes no more than those
            pipeline.lpush(trades_key(symbol), *(json.dumps(trade) for trade in trade_texts[-RECENT_TRADES:]))
            pipeline.ltrim(trades_key(symbol), 0, RECENT_TRADES - 1)
            pipeline.set(ticker_key(symbol), json.dumps(ticker))
        if kline_texts:
            pipeline.set(kline_key(symbol), json.dumps(kline_texts[-1]))
        message = {"type": MARKET_UPDATE, "pair": market.symbol, "previous_sequence": previous,
                   "sequence": market.sequence, "bids": changed["buy"], "asks": changed["sell"], "trades": trade_texts,
                   "klines": kline_texts, "checksum": market.checksum(), "committed_at": committed_at}
        if ticker is not None:
            message["ticker"] = ticker
        return market_group(market.symbol), message

    def _write_whole(self, store: redis.Redis, market: PublishedMarket) -> None:
        """Writes the market's whole state and publishes its snapshot, in one transaction."""
        symbol, now = market.symbol, datetime.now(UTC)
        market.stats.advance(now)
        bids, asks = market.side_text("buy"), market.side_text("sell")
        ticker = market.stats.ticker(now)
        newest = max(market.stats.klines.values(), key=lambda kline: kline.open_time, default=None)
        with store.pipeline(transaction=True) as pipeline:
            pipeline.delete(book_key(symbol, "buy"), book_key(symbol, "sell"), trades_key(symbol), kline_key(symbol))
            if bids:
                pipeline.hset(book_key(symbol, "buy"), mapping=dict(bids))
            if asks:
                pipeline.hset(book_key(symbol, "sell"), mapping=dict(asks))
            if market.trades:
                pipeline.rpush(trades_key(symbol), *(json.dumps(trade) for trade in market.trades))
            pipeline.set(ticker_key(symbol), json.dumps(ticker))
            if newest is not None:
                pipeline.set(kline_key(symbol), json.dumps(newest.as_json()))
            pipeline.set(sequence_key(symbol), market.sequence)
            pipeline.set(written_whole_key(symbol), time.time())
            self._publish(pipeline, [(market_group(symbol), {
                "type": MARKET_SNAPSHOT, "pair": symbol, "sequence": market.sequence, "bids": bids, "asks": asks,
                "checksum": market.checksum(), "ticker": ticker})])
            pipeline.execute()

    def _turn_minute(self, store: redis.Redis) -> None:
        """The minute turned: every ticker's window moved, so each is written again and sent to its clients. A
        pair whose state in Redis is not the one published last (Redis emptied, or a publication that failed)
        is written whole, so a quiet pair is healed within a minute too."""
        now = datetime.now(UTC)
        markets = list(self.markets.items())
        held = store.mget([sequence_key(market.symbol) for _, market in markets]) if markets else []
        tickers = []
        with store.pipeline(transaction=False) as pipeline:
            for (pair_id, market), value in zip(markets, held, strict=True):
                if value is None or int(value) != market.sequence:
                    self._write_whole(store, market)
                    self.written.add(pair_id)
                    continue
                market.stats.advance(now)
                ticker = market.stats.ticker(now)
                pipeline.set(ticker_key(market.symbol), json.dumps(ticker))
                tickers.append((market_group(market.symbol), {"type": MARKET_TICKER, "pair": market.symbol,
                                                              "ticker": ticker}))
            self._publish(pipeline, tickers)
            pipeline.execute()

    def _publish_order_updates(self, store: redis.Redis, batch: Batch, listening: set[int],
                               committed_at: float) -> None:
        """After the market's transaction (which told who listens): the owners' order updates."""
        if updates := self._order_updates(batch, listening, committed_at):
            with store.pipeline(transaction=False) as pipeline:
                self._publish(pipeline, updates)
                pipeline.execute()

    def _order_updates(self, batch: Batch, listening: set[int], committed_at: float) -> list[tuple[str, dict]]:
        """The orders the batch changed of each owner listening, one message per owner."""
        by_owner: dict[int, list[dict]] = {}
        if not listening:
            return []
        for order_id, status, filled, _, quantity, reason, _ in batch.orders.values():
            owner, pair_id = batch.owners[order_id]
            if owner not in listening:
                continue
            market = self.markets.get(pair_id)
            if market is None:
                continue
            update = {"id": order_id, "pair": market.symbol, "status": status, "reason": reason}
            if filled is not None:           # a rejected order's amounts stay as the API wrote them
                update["filled_quantity"] = market.units.quantity_text(filled)
                update["remaining_quantity"] = market.units.quantity_text(quantity - filled)
            by_owner.setdefault(owner, []).append(update)
        return [(orders_group(owner), {"type": ORDERS_UPDATE, "orders": orders, "committed_at": committed_at})
                for owner, orders in by_owner.items()]


def channel_layer_prefix() -> str:
    """The prefix of the channel layer's Redis channels. The worker publishes on one Redis: a layer sharded over
    several hosts would carry a group on the host its name hashes to."""
    layer: dict[str, Any] = settings.CHANNEL_LAYERS["default"]
    if not layer["BACKEND"].endswith("RedisPubSubChannelLayer") or len(layer["CONFIG"]["hosts"]) != 1:
        raise ImproperlyConfigured("the market data publisher needs channels-redis's pub/sub layer on one host")
    return layer["CONFIG"].get("prefix", "asgi")


def committed_history(pair_id: int, symbol: str) -> tuple[list[dict], MarketStats]:
    """The pair's newest RECENT_TRADES trades (newest first, as the API writes them) and the klines of the
    ticker window, read from the trade table (on the worker's thread, before any batch of the pair)."""
    now = datetime.now(UTC)
    with connection.cursor() as cursor:
        cursor.execute("SELECT sequence, price, quantity, taker_side, executed_at FROM exchange_trade"
                       " WHERE pair_id = %s ORDER BY sequence DESC LIMIT %s", [pair_id, RECENT_TRADES])
        trades = [{"sequence": sequence, "price": amount_text(price), "quantity": amount_text(quantity),
                   "taker_side": taker_side, "executed_at": iso_time(executed_at)}
                  for sequence, price, quantity, taker_side, executed_at in cursor.fetchall()]
    klines = [Kline(open_time, *figures) for open_time, *figures in kline_rows(pair_id, MINUTE, window_start_for(now),
                                                                               datetime.max.replace(tzinfo=UTC))]
    last_sequence = trades[0]["sequence"] if trades else 0
    return trades, MarketStats(symbol, klines, last_sequence)
