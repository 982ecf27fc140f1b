"""Publishing a committed batch's market data: the pairs' book state and recent trades in Redis, then the
updates on the channel layer (`exchange/market_feed.py` is the contract).

A thread of its own does it, fed in commit order: the engines' thread only hands over what the batch changed
(levels in ticks and lots, the batch's trade and order rows), and the Decimal text, the Redis writes, the
checksum and the messages happen here. Nothing is published before its batch has committed, so a client never
sees a trade that a crash undoes; a batch committed but not yet published when the worker dies is covered by
the snapshot the restarted worker publishes for each pair it loads.
"""
from __future__ import annotations

import asyncio
import json
import logging
import queue
import threading
import time

import redis
from channels.layers import get_channel_layer
from django.conf import settings
from sortedcontainers import SortedDict

from exchange.market_feed import (
    RECENT_TRADES,
    book_key,
    checksum,
    listening_owners_key,
    market_group,
    orders_group,
    sequence_key,
    trades_key,
)
from matching.units import PairUnits, amount_text
from matching_worker.batch import Batch
from matching_worker.pairs import PairRuntime

log = logging.getLogger("matching_worker")
CHECKSUM_DEPTH = 10


class PublishedBook:
    """A pair's book as published: the levels' totals in lots by ticks, kept sorted for the checksum."""

    def __init__(self, symbol: str, units: PairUnits, sequence: int) -> None:
        self.symbol = symbol
        self.units = units
        self.sequence = sequence
        self.bids: SortedDict = SortedDict()     # -ticks -> lots: best (highest) first
        self.asks: SortedDict = SortedDict()     # ticks -> lots: best (lowest) first

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

    def __init__(self) -> None:
        self.queue: queue.Queue = queue.Queue()
        self.books: dict[int, PublishedBook] = {}
        self.thread = threading.Thread(target=self._run, name="market-publisher", daemon=True)
        self.thread.start()

    def reset(self, runtime: PairRuntime) -> None:
        """The pair as just loaded from the database: its whole book is published again."""
        book = PublishedBook(runtime.symbol, runtime.units, runtime.engine.sequence)
        levels: dict[tuple[str, int], int] = {}
        for order in runtime.engine.snapshot().resting:
            levels[order.side, order.price] = levels.get((order.side, order.price), 0) + order.quantity
        for (side, ticks), lots in levels.items():
            book.set(side, ticks, lots)
        self.queue.put(("snapshot", runtime.pair_id, book))

    def publish(self, batch: Batch) -> None:
        """A committed batch."""
        self.queue.put(("batch", batch, time.time()))

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join(10)

    # ---- the publisher's thread --------------------------------------------------------------------
    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        layer = get_channel_layer()
        store = redis.Redis.from_url(settings.REDIS_URL)
        while (item := self.queue.get()) is not None:
            try:
                messages = self._apply(store, item)
                loop.run_until_complete(self._send(layer, messages))
            except Exception:  # noqa: BLE001 - a publishing failure must never stop matching; clients resync
                log.exception("market data not published", extra={"event": "publish_failed"})
        loop.close()

    @staticmethod
    async def _send(layer, messages: list[tuple[str, dict]]) -> None:
        published_at = time.time()
        for group, message in messages:
            message["published_at"] = published_at
            await layer.group_send(group, message)

    def _apply(self, store: redis.Redis, item: tuple) -> list[tuple[str, dict]]:
        if item[0] == "snapshot":
            _, pair_id, book = item
            self.books[pair_id] = book
            return [self._write_snapshot(store, book)]
        _, batch, committed_at = item
        messages = []
        executed_at = batch.now.isoformat().replace("+00:00", "Z")
        with store.pipeline(transaction=True) as pipeline:
            for changes in batch.market:
                book = self.books.get(changes.pair_id)
                if book is None:
                    continue
                message = self._update(pipeline, book, changes, batch, executed_at, committed_at)
                if message is not None:
                    messages.append(message)
            pipeline.execute()
        return messages + self._order_updates(batch, self._listening_owners(store), committed_at)

    @staticmethod
    def _write_snapshot(store: redis.Redis, book: PublishedBook) -> tuple[str, dict]:
        bids, asks = book.side_text("buy"), book.side_text("sell")
        with store.pipeline(transaction=True) as pipeline:
            pipeline.delete(book_key(book.symbol, "buy"), book_key(book.symbol, "sell"))
            if bids:
                pipeline.hset(book_key(book.symbol, "buy"), mapping=dict(bids))
            if asks:
                pipeline.hset(book_key(book.symbol, "sell"), mapping=dict(asks))
            pipeline.set(sequence_key(book.symbol), book.sequence)
            pipeline.execute()
        return market_group(book.symbol), {
            "type": "market.snapshot", "pair": book.symbol, "sequence": book.sequence, "bids": bids, "asks": asks,
            "checksum": book.checksum()}

    @staticmethod
    def _update(pipeline, book: PublishedBook, changes, batch: Batch, executed_at: str,
                committed_at: float) -> tuple[str, dict] | None:
        trades = [{"sequence": row[1], "price": amount_text(row[4]), "quantity": amount_text(row[5]),
                   "taker_side": row[6], "executed_at": executed_at}
                  for row in batch.trades if row[0] == changes.pair_id]
        if not changes.levels and not trades:
            return None
        changed = {"buy": [], "sell": []}
        for (side, ticks), lots in changes.levels.items():
            book.set(side, ticks, lots)
            price, quantity = book.text(ticks, lots)
            changed[side].append((price, quantity))
            if lots:
                pipeline.hset(book_key(book.symbol, side), price, quantity)
            else:
                pipeline.hdel(book_key(book.symbol, side), price)
        previous, book.sequence = book.sequence, changes.sequence
        pipeline.set(sequence_key(book.symbol), book.sequence)
        if trades:       # only the newest RECENT_TRADES are kept: a big batch writes no more than those
            pipeline.lpush(trades_key(book.symbol), *(json.dumps(trade) for trade in trades[-RECENT_TRADES:]))
            pipeline.ltrim(trades_key(book.symbol), 0, RECENT_TRADES - 1)
        return market_group(book.symbol), {
            "type": "market.update", "pair": book.symbol, "previous_sequence": previous, "sequence": book.sequence,
            "bids": changed["buy"], "asks": changed["sell"], "trades": trades, "checksum": book.checksum(),
            "committed_at": committed_at}

    @staticmethod
    def _listening_owners(store: redis.Redis) -> set[int]:
        return {int(owner) for owner, streams in store.hgetall(listening_owners_key()).items() if int(streams) > 0}

    def _order_updates(self, batch: Batch, listening: set[int], committed_at: float) -> list[tuple[str, dict]]:
        """The orders the batch changed of each owner listening, one message per owner."""
        by_owner: dict[int, list[dict]] = {}
        if not listening:
            return []
        for order_id, status, filled, _, quantity, reason, _ in batch.orders.values():
            owner, pair_id = batch.owners[order_id]
            if owner not in listening:
                continue
            book = self.books.get(pair_id)
            if book is None:
                continue
            update = {"id": order_id, "pair": book.symbol, "status": status, "reason": reason}
            if filled is not None:           # a rejected order's amounts stay as the API wrote them
                update["filled_quantity"] = book.units.quantity_text(filled)
                update["remaining_quantity"] = book.units.quantity_text(quantity - filled)
            by_owner.setdefault(owner, []).append(update)
        return [(orders_group(owner), {"type": "orders.update", "orders": orders, "committed_at": committed_at})
                for owner, orders in by_owner.items()]
