"""The legacy order book: the plain, obviously-correct implementation of MATCHING_RULES.md.

Sorted price levels (sortedcontainers) holding FIFO queues (OrderedDict, so a cancel anywhere in a
queue is O(1)). Clarity first: every rule is a small method, read top to bottom.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

from sortedcontainers import SortedDict

from matching.orders import (
    ACCEPTED,
    BUY,
    CANCELLED,
    CANNOT_INCREASE,
    DONE,
    DUPLICATE_ORDER_ID,
    EXPIRE_BOTH,
    EXPIRE_MAKER,
    EXPIRE_TAKER,
    FOK,
    FOK_UNFILLABLE,
    INVALID_PRICE,
    INVALID_QUANTITY,
    IOC,
    LEVEL,
    MARKET,
    NO_LIQUIDITY,
    POST_ONLY,
    POST_ONLY_WOULD_CROSS,
    REJECTED,
    RESTED,
    SELF_TRADE,
    SELL,
    STP_NONE,
    TRADE,
    UNKNOWN_ORDER,
    USER,
    BookSnapshot,
    Event,
    RestingOrder,
)


@dataclass(slots=True)
class _Order:
    order_id: int
    account: int
    side: str
    price: int | None           # None for a market order, which never rests
    quantity: int


@dataclass(slots=True)
class _Level:
    side: str
    price: int
    total: int
    queue: OrderedDict[int, _Order]


class _TouchedLevels:
    """Remembers which levels a command changed, in first-touched order, for the level events."""

    def __init__(self) -> None:
        self._levels: dict[tuple[str, int], _Level] = {}

    def touch(self, level: _Level) -> None:
        self._levels.setdefault((level.side, level.price), level)

    def events(self) -> list[Event]:
        return [(LEVEL, level.side, level.price, level.total) for level in self._levels.values()]


class LegacyOrderBook:
    """One pair's book: bids and asks as sorted price levels with FIFO queues."""

    def __init__(self) -> None:
        self._bids: SortedDict = SortedDict()
        self._asks: SortedDict = SortedDict()
        self._orders: dict[int, _Order] = {}
        self._seen_order_ids: set[int] = set()

    # ---- commands -------------------------------------------------------------------------
    def place(self, order_id: int, account: int, side: str, quantity: int, price: int | None = None,
              order_type: str = "limit", time_in_force: str = "gtc",
              self_trade: str = EXPIRE_TAKER) -> list[Event]:
        reason = self._reject_reason(order_id, quantity, price, order_type)
        self._seen_order_ids.add(order_id)
        if reason:
            return [(REJECTED, order_id, reason)]
        limit = None if order_type == MARKET else price
        tif = MARKET if order_type == MARKET else time_in_force
        if tif == POST_ONLY and self._best_crossed_level(side, limit) is not None:
            return [(REJECTED, order_id, POST_ONLY_WOULD_CROSS)]
        if tif == FOK and self._fillable_quantity(account, side, limit, self_trade, quantity) < quantity:
            return [(REJECTED, order_id, FOK_UNFILLABLE)]
        taker = _Order(order_id, account, side, price, quantity)
        events: list[Event] = [(ACCEPTED, order_id)]
        touched = _TouchedLevels()
        taker_expired = self._match(taker, limit, self_trade, events, touched)
        if not taker_expired:
            self._finish_taker(taker, tif, events, touched)
        return events + touched.events()

    def cancel(self, order_id: int) -> list[Event]:
        order = self._orders.get(order_id)
        if order is None:
            return [(REJECTED, order_id, UNKNOWN_ORDER)]
        level = self._remove(order)
        return [(ACCEPTED, order_id), (CANCELLED, order_id, USER), (LEVEL, order.side, order.price, level.total)]

    def reduce(self, order_id: int, quantity: int) -> list[Event]:
        order = self._orders.get(order_id)
        if order is None:
            return [(REJECTED, order_id, UNKNOWN_ORDER)]
        if quantity < 0:
            return [(REJECTED, order_id, INVALID_QUANTITY)]
        if quantity > order.quantity:
            return [(REJECTED, order_id, CANNOT_INCREASE)]
        if quantity == order.quantity:
            return [(ACCEPTED, order_id)]
        if quantity == 0:
            return self.cancel(order_id)
        level = self._levels(order.side)[order.price]
        level.total -= order.quantity - quantity
        order.quantity = quantity
        return [(ACCEPTED, order_id), (LEVEL, order.side, order.price, level.total)]

    # ---- the rules of an incoming order ------------------------------------------------------
    def _reject_reason(self, order_id: int, quantity: int, price: int | None, order_type: str) -> str:
        if order_id in self._seen_order_ids:
            return DUPLICATE_ORDER_ID
        if quantity <= 0:
            return INVALID_QUANTITY
        if order_type != MARKET and (price is None or price <= 0):
            return INVALID_PRICE
        return ""

    def _fillable_quantity(self, account: int, side: str, limit: int | None, self_trade: str, wanted: int) -> int:
        """What a FOK taker could fill now, walking crossed makers in priority order until it has enough."""
        fillable = 0
        for level in self._crossed_levels(side, limit):
            for maker in level.queue.values():
                if maker.account == account and self_trade != STP_NONE:
                    if self_trade == EXPIRE_MAKER:
                        continue
                    return fillable
                fillable += maker.quantity
                if fillable >= wanted:
                    return fillable
        return fillable

    def _match(self, taker: _Order, limit: int | None, self_trade: str, events: list[Event],
               touched: _TouchedLevels) -> bool:
        """Trades the taker against crossed makers; True when self-trade prevention expired it."""
        while taker.quantity:
            level = self._best_crossed_level(taker.side, limit)
            if level is None:
                return False
            maker = next(iter(level.queue.values()))
            if maker.account != taker.account or self_trade == STP_NONE:
                touched.touch(level)
                self._trade(maker, taker, level, events)
                continue
            if self_trade in (EXPIRE_MAKER, EXPIRE_BOTH):
                touched.touch(level)
                self._remove(maker)
                events.append((CANCELLED, maker.order_id, SELF_TRADE))
            if self_trade in (EXPIRE_TAKER, EXPIRE_BOTH):
                events.append((CANCELLED, taker.order_id, SELF_TRADE))
                return True
        return False

    def _trade(self, maker: _Order, taker: _Order, level: _Level, events: list[Event]) -> None:
        quantity = min(maker.quantity, taker.quantity)
        events.append((TRADE, maker.order_id, taker.order_id, maker.price, quantity))
        taker.quantity -= quantity
        if quantity == maker.quantity:
            self._remove(maker)
        else:
            maker.quantity -= quantity
            level.total -= quantity

    def _finish_taker(self, taker: _Order, tif: str, events: list[Event], touched: _TouchedLevels) -> None:
        if taker.quantity == 0:
            events.append((DONE, taker.order_id))
        elif tif == MARKET:
            events.append((CANCELLED, taker.order_id, NO_LIQUIDITY))
        elif tif == IOC:
            events.append((CANCELLED, taker.order_id, IOC))
        else:
            touched.touch(self._add(taker))
            events.append((RESTED, taker.order_id, taker.quantity))

    # ---- the book's structure -----------------------------------------------------------------
    def _levels(self, side: str) -> SortedDict:
        return self._bids if side == BUY else self._asks

    def _best_crossed_level(self, side: str, limit: int | None) -> _Level | None:
        return next(self._crossed_levels(side, limit), None)

    def _crossed_levels(self, side: str, limit: int | None) -> Iterator[_Level]:
        """The opposite side's levels a taker of this side and limit crosses, best first."""
        if side == BUY:
            for price in self._asks.irange(maximum=limit):
                yield self._asks[price]
        else:
            for price in self._bids.irange(minimum=limit, reverse=True):
                yield self._bids[price]

    def _add(self, order: _Order) -> _Level:
        levels = self._levels(order.side)
        level = levels.get(order.price)
        if level is None:
            # A resting order has a price: a market order never rests.
            level = levels[order.price] = _Level(order.side, order.price, 0, OrderedDict())  # type: ignore[arg-type]
        level.queue[order.order_id] = order
        level.total += order.quantity
        self._orders[order.order_id] = order
        return level

    def _remove(self, order: _Order) -> _Level:
        levels = self._levels(order.side)
        level = levels[order.price]
        del level.queue[order.order_id]
        level.total -= order.quantity
        if not level.queue:
            del levels[order.price]
        del self._orders[order.order_id]
        return level

    # ---- reading, snapshot and restore --------------------------------------------------------
    def best_bid(self) -> int | None:
        return self._bids.peekitem(-1)[0] if self._bids else None

    def best_ask(self) -> int | None:
        return self._asks.peekitem(0)[0] if self._asks else None

    def depth(self, limit: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """The best `limit` levels of each side as (price, total), best first."""
        bids = [(level.price, level.total) for level in list(reversed(self._bids.values()))[:limit]]
        asks = [(level.price, level.total) for level in list(self._asks.values())[:limit]]
        return bids, asks

    def resting_order_count(self) -> int:
        return len(self._orders)

    def snapshot(self) -> BookSnapshot:
        levels = list(reversed(self._bids.values())) + list(self._asks.values())
        resting = tuple(
            RestingOrder(order.order_id, order.account, order.side, order.price, order.quantity)
            for level in levels for order in level.queue.values()
        )
        return BookSnapshot(resting, frozenset(self._seen_order_ids))

    @classmethod
    def from_snapshot(cls, snapshot: BookSnapshot) -> LegacyOrderBook:
        book = cls()
        for order in snapshot.resting:
            book._add(_Order(order.order_id, order.account, order.side, order.price, order.quantity))
        book._seen_order_ids = set(snapshot.seen_order_ids)
        return book

    def _check(self) -> None:
        """Asserts the book's invariants (sortedcontainers style); the property tests call it."""
        best_bid, best_ask = self.best_bid(), self.best_ask()
        assert best_bid is None or best_ask is None or best_bid < best_ask, "book is crossed"
        count = 0
        for side, levels in ((BUY, self._bids), (SELL, self._asks)):
            for price, level in levels.items():
                assert level.queue, f"empty level {side} {price}"
                assert level.side == side and level.price == price
                assert level.total == sum(o.quantity for o in level.queue.values()), "level total"
                for order in level.queue.values():
                    assert order.quantity > 0 and order.price == price and order.side == side
                    assert self._orders[order.order_id] is order
                    count += 1
        assert count == len(self._orders), "orders index out of step with the levels"
