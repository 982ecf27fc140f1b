"""The adaptive order book: the fast implementation of MATCHING_RULES.md.

Same events as the legacy book, built for CPython's speed and for memory that follows the resting
orders, not the price range:

- Each side is a dict of price levels plus a binary heap of its prices (C `heapq`): O(1) best price,
  O(log n) new level, and no structure sized by the price range. Emptied levels leave the heap lazily;
  the heap is rebuilt from the live levels once stale entries outnumber them, so it never holds more
  than about twice the live prices.
- A level queue keeps a head index instead of shifting, and a cancel only marks its order dead where
  it stands; the queue compacts itself once dead entries outweigh live ones.
- Orders and levels are small lists indexed by constant positions instead of objects: building a list
  costs about a third of a `__slots__` instance, and the hot path builds one per resting order.
- Duplicate order ids are remembered in per-32768-id bitmaps (4 KiB each), not a set: about a bit per
  id instead of ~60 bytes, so a long-running book does not grow with every order it has ever seen.

Layouts (the positions are spelled out at each use, with the field name in a comment):
    order = [order_id, account, remaining, level]
    level = [total, live_orders, head, queue, price, side]
The hot paths bind attributes to locals and inline the common cases (a resting limit order, a cancel);
each trick was kept only where `make benchmark-trading` showed it pays.
"""
from __future__ import annotations

from heapq import heapify, heappop, heappush, nlargest, nsmallest

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
    GTC,
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

_CHUNK_SHIFT = 15          # 32768 order ids per bitmap chunk
_CHUNK_BYTES = 1 << 12     # 32768 bits
_CHUNK_MASK = _CHUNK_BYTES - 1
_HEAP_SLACK = 64           # stale heap entries tolerated before the ratio rule applies


class AdaptiveOrderBook:
    """One pair's book, tuned for throughput; event-for-event identical to the legacy book."""

    def __init__(self) -> None:
        self._orders: dict = {}            # order_id -> order
        self._bid_levels: dict = {}        # price -> level
        self._ask_levels: dict = {}
        self._bid_heap: list = []          # -price of bid levels; the top is always live
        self._ask_heap: list = []          # price of ask levels; the top is always live
        self._seen_chunks: dict = {}       # order_id >> _CHUNK_SHIFT -> bytearray bitmap

    # ---- commands ----------------------------------------------------------------------------
    def place(self, order_id: int, account: int, side: str, quantity: int, price: int | None = None,
              order_type: str = "limit", time_in_force: str = GTC,
              self_trade: str = EXPIRE_TAKER) -> list[Event]:
        chunk = self._seen_chunks.get(order_id >> _CHUNK_SHIFT)
        if chunk is None:
            chunk = self._seen_chunks[order_id >> _CHUNK_SHIFT] = bytearray(_CHUNK_BYTES)
        index = (order_id >> 3) & _CHUNK_MASK
        bits = chunk[index]
        bit = 1 << (order_id & 7)
        if bits & bit:
            return [(REJECTED, order_id, DUPLICATE_ORDER_ID)]
        chunk[index] = bits | bit
        if quantity <= 0:
            return [(REJECTED, order_id, INVALID_QUANTITY)]
        market = order_type == MARKET
        if market:
            price = None
        elif price is None or price <= 0:
            return [(REJECTED, order_id, INVALID_PRICE)]
        if side == BUY:
            opposite = self._ask_heap
            crosses = opposite and (market or opposite[0] <= price)
        else:
            opposite = self._bid_heap
            crosses = opposite and (market or -opposite[0] >= price)
        if crosses:
            return self._take(order_id, account, side, quantity, price, market, time_in_force, self_trade)
        if market:
            return [(ACCEPTED, order_id), (CANCELLED, order_id, NO_LIQUIDITY)]
        if time_in_force == GTC or time_in_force == POST_ONLY:
            # _rest inlined: resting is half of all commands on a live book, and the call cost 15%.
            if side == BUY:
                levels = self._bid_levels
                level = levels.get(price)
                if level is None:
                    level = levels[price] = [0, 0, 0, [], price, side]
                    heappush(self._bid_heap, -price)
            else:
                levels = self._ask_levels
                level = levels.get(price)
                if level is None:
                    level = levels[price] = [0, 0, 0, [], price, side]
                    heappush(self._ask_heap, price)
            order = [order_id, account, quantity, level]
            level[3].append(order)
            level[1] += 1
            total = level[0] + quantity
            level[0] = total
            self._orders[order_id] = order
            return [(ACCEPTED, order_id), (RESTED, order_id, quantity), (LEVEL, side, price, total)]
        if time_in_force == IOC:
            return [(ACCEPTED, order_id), (CANCELLED, order_id, IOC)]
        return [(REJECTED, order_id, FOK_UNFILLABLE)]

    def cancel(self, order_id: int) -> list[Event]:
        order = self._orders.pop(order_id, None)
        if order is None:
            return [(REJECTED, order_id, UNKNOWN_ORDER)]
        level = order[3]                        # level
        total = level[0] - order[2]             # total - remaining
        level[0] = total
        order[2] = 0                            # dead: skipped where it stands in the queue
        live = level[1] - 1
        level[1] = live
        if live:
            self._forget_dead(level, order)
        else:
            self._drop_level(level)
        return [(ACCEPTED, order_id), (CANCELLED, order_id, USER), (LEVEL, level[5], level[4], total)]

    def reduce(self, order_id: int, quantity: int) -> list[Event]:
        order = self._orders.get(order_id)
        if order is None:
            return [(REJECTED, order_id, UNKNOWN_ORDER)]
        remaining = order[2]
        if quantity < 0:
            return [(REJECTED, order_id, INVALID_QUANTITY)]
        if quantity > remaining:
            return [(REJECTED, order_id, CANNOT_INCREASE)]
        if quantity == remaining:
            return [(ACCEPTED, order_id)]
        if quantity == 0:
            return self.cancel(order_id)
        level = order[3]
        level[0] -= remaining - quantity
        order[2] = quantity
        return [(ACCEPTED, order_id), (LEVEL, level[5], level[4], level[0])]

    # ---- an incoming order that crosses -----------------------------------------------------------
    def _take(self, order_id: int, account: int, side: str, quantity: int, price: int | None,
              market: bool, time_in_force: str, self_trade: str) -> list[Event]:
        """An incoming order that crosses: trades against the opposite side best-first.

        Heap keys are prices for asks and -prices for bids, so one loop serves both sides: a level
        crosses while its key <= limit_key. The loop is one function on purpose (a call per level
        cost ~10% of the balanced workload).
        """
        if side == BUY:
            levels, heap, sign = self._ask_levels, self._ask_heap, 1
            limit_key = None if market else price
        else:
            levels, heap, sign = self._bid_levels, self._bid_heap, -1
            limit_key = None if market else -price
        if not market:
            if time_in_force == POST_ONLY:
                return [(REJECTED, order_id, POST_ONLY_WOULD_CROSS)]
            if time_in_force == FOK and self._fillable(account, side, limit_key, self_trade, quantity) < quantity:
                return [(REJECTED, order_id, FOK_UNFILLABLE)]
        orders = self._orders
        prevent = self_trade != STP_NONE
        events: list[Event] = [(ACCEPTED, order_id)]
        touched: list[Event] = []
        expired = False
        while quantity and heap:
            key = heap[0]
            if limit_key is not None and key > limit_key:
                break
            level_price = key * sign
            level = levels[level_price]
            queue = level[3]
            head = level[2]
            changed = False
            while quantity:
                maker = queue[head]
                maker_remaining = maker[2]
                if not maker_remaining:                       # cancelled earlier, left in place
                    head += 1
                    continue
                if prevent and maker[1] == account:
                    if self_trade == EXPIRE_TAKER:
                        expired = True
                        break
                    events.append((CANCELLED, maker[0], SELF_TRADE))
                    if self_trade == EXPIRE_BOTH:
                        expired = True
                elif maker_remaining > quantity:
                    events.append((TRADE, maker[0], order_id, level_price, quantity))
                    maker[2] = maker_remaining - quantity
                    level[0] -= quantity
                    quantity = 0
                    changed = True
                    break
                else:
                    events.append((TRADE, maker[0], order_id, level_price, maker_remaining))
                    quantity -= maker_remaining
                # the maker leaves the book: filled in full, or cancelled by self-trade prevention
                changed = True
                del orders[maker[0]]
                maker[2] = 0
                level[0] -= maker_remaining
                level[1] -= 1
                head += 1
                if expired or not level[1]:
                    break
            if changed:
                touched.append((LEVEL, level[5], level_price, level[0]))
            if not level[1]:
                self._drop_level(level)
            else:
                if head * 2 >= len(queue):           # consumed entries are at most half the queue
                    del queue[:head]
                    head = 0
                level[2] = head
            if expired:
                events.append((CANCELLED, order_id, SELF_TRADE))
                break
        if expired:
            pass
        elif not quantity:
            events.append((DONE, order_id))
        elif market:
            events.append((CANCELLED, order_id, NO_LIQUIDITY))
        elif time_in_force == IOC:
            events.append((CANCELLED, order_id, IOC))
        else:
            events.append((RESTED, order_id, quantity))
            touched.append((LEVEL, side, price, self._rest(order_id, account, side, quantity, price)))
        events += touched
        return events

    def _fillable(self, account: int, side: str, limit_key: int, self_trade: str, wanted: int) -> int:
        """What a FOK taker could fill now, walking crossed makers in priority order.

        The heap is walked best-first without popping it (a frontier of heap indices), so a FOK
        costs O(k log k) in the k levels it looks at, however deep the book is.
        """
        if side == BUY:
            levels, heap, sign = self._ask_levels, self._ask_heap, 1
        else:
            levels, heap, sign = self._bid_levels, self._bid_heap, -1
        size = len(heap)
        frontier = [(heap[0], 0)]
        visited = set()
        fillable = 0
        while frontier and fillable < wanted:
            key, index = heappop(frontier)
            if key > limit_key:
                break
            for child in (2 * index + 1, 2 * index + 2):
                if child < size:
                    heappush(frontier, (heap[child], child))
            level = levels.get(key * sign)
            if level is None or key in visited:           # stale or duplicate heap entry
                continue
            visited.add(key)
            for maker in level[3][level[2]:]:
                if not maker[2]:
                    continue
                if maker[1] == account and self_trade != STP_NONE:
                    if self_trade == EXPIRE_MAKER:
                        continue
                    return fillable
                fillable += maker[2]
        return fillable

    # ---- the book's structure --------------------------------------------------------------------
    def _rest(self, order_id: int, account: int, side: str, quantity: int, price: int) -> int:
        """Adds an order at the back of its level; returns the level's new total."""
        if side == BUY:
            levels, heap, key = self._bid_levels, self._bid_heap, -price
        else:
            levels, heap, key = self._ask_levels, self._ask_heap, price
        level = levels.get(price)
        if level is None:
            level = levels[price] = [0, 0, 0, [], price, side]
            heappush(heap, key)
        order = [order_id, account, quantity, level]
        level[3].append(order)
        level[1] += 1
        total = level[0] + quantity
        level[0] = total
        self._orders[order_id] = order
        return total

    @staticmethod
    def _forget_dead(level: list, order: list) -> None:
        """After a cancel in a level that still has live orders: trims dead entries at either end at once
        (the common cases: the oldest or the newest order) and compacts when dead ones outnumber live ones,
        so a queue never holds more than about twice its live orders (the deep-book memory figure)."""
        queue = level[3]
        head = level[2]
        if queue[-1] is order:
            queue.pop()
            while not queue[-1][2]:
                queue.pop()
        elif queue[head] is order:
            head += 1
            while not queue[head][2]:
                head += 1
            level[2] = head
        dead = len(queue) - head - level[1]
        if dead > level[1] or head * 2 >= len(queue):
            level[3] = [entry for entry in queue[head:] if entry[2]]
            level[2] = 0

    def _drop_level(self, level: list) -> None:
        """Removes an empty level, keeping each heap's top live and its stale entries bounded."""
        price = level[4]
        if level[5] == BUY:
            levels, heap, sign = self._bid_levels, self._bid_heap, -1
        else:
            levels, heap, sign = self._ask_levels, self._ask_heap, 1
        del levels[price]
        # Orders point at their level and the level's queue points at them: clearing the queue breaks the
        # cycle so reference counting frees the level at once (left to the cyclic collector, dropped levels
        # were ~40% of the deep book's memory).
        level[3] = None
        if heap[0] == price * sign:
            heappop(heap)
            while heap and heap[0] * sign not in levels:
                heappop(heap)
        if len(heap) > 2 * len(levels) + _HEAP_SLACK:
            heap[:] = [price * sign for price in levels]
            heapify(heap)

    # ---- reading, snapshot and restore -----------------------------------------------------------
    def best_bid(self) -> int | None:
        return -self._bid_heap[0] if self._bid_heap else None

    def best_ask(self) -> int | None:
        return self._ask_heap[0] if self._ask_heap else None

    def depth(self, limit: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """The best `limit` levels of each side as (price, total), best first."""
        bids = [(price, self._bid_levels[price][0]) for price in nlargest(limit, self._bid_levels)]
        asks = [(price, self._ask_levels[price][0]) for price in nsmallest(limit, self._ask_levels)]
        return bids, asks

    def resting_order_count(self) -> int:
        return len(self._orders)

    def snapshot(self) -> BookSnapshot:
        levels = [self._bid_levels[p] for p in sorted(self._bid_levels, reverse=True)]
        levels += [self._ask_levels[p] for p in sorted(self._ask_levels)]
        resting = tuple(
            RestingOrder(order[0], order[1], level[5], level[4], order[2])
            for level in levels for order in level[3][level[2]:] if order[2]
        )
        return BookSnapshot(resting, frozenset(self._seen_order_ids()))

    @classmethod
    def from_snapshot(cls, snapshot: BookSnapshot) -> AdaptiveOrderBook:
        book = cls()
        for order in snapshot.resting:
            book._rest(order.order_id, order.account, order.side, order.quantity, order.price)
        for order_id in snapshot.seen_order_ids:
            book._remember(order_id)
        return book

    def _remember(self, order_id: int) -> None:
        chunk = self._seen_chunks.setdefault(order_id >> _CHUNK_SHIFT, bytearray(_CHUNK_BYTES))
        chunk[(order_id >> 3) & _CHUNK_MASK] |= 1 << (order_id & 7)

    def _seen_order_ids(self) -> list[int]:
        seen = []
        for chunk_key, chunk in self._seen_chunks.items():
            base = chunk_key << _CHUNK_SHIFT
            for index, bits in enumerate(chunk):
                if bits:
                    seen.extend(base + index * 8 + bit for bit in range(8) if bits >> bit & 1)
        return seen

    def _check(self) -> None:
        """Asserts the book's invariants (sortedcontainers style); the property tests call it."""
        best_bid, best_ask = self.best_bid(), self.best_ask()
        assert best_bid is None or best_ask is None or best_bid < best_ask, "book is crossed"
        assert (best_bid is None) == (not self._bid_levels) and (best_ask is None) == (not self._ask_levels)
        if self._bid_levels:
            assert best_bid == max(self._bid_levels), "bid heap top is not the best bid"
        if self._ask_levels:
            assert best_ask == min(self._ask_levels), "ask heap top is not the best ask"
        assert set(-k for k in self._bid_heap) >= set(self._bid_levels), "a bid level is missing from its heap"
        assert set(self._ask_heap) >= set(self._ask_levels), "an ask level is missing from its heap"
        count = 0
        for side, levels in ((BUY, self._bid_levels), (SELL, self._ask_levels)):
            for price, level in levels.items():
                live = [order for order in level[3][level[2]:] if order[2]]
                assert live, f"empty level {side} {price}"
                assert level[1] == len(live), "live count"
                assert level[0] == sum(order[2] for order in live), "level total"
                assert level[4] == price and level[5] == side
                for order in live:
                    assert order[2] > 0 and order[3] is level
                    assert self._orders[order[0]] is order
                count += len(live)
        assert count == len(self._orders), "orders index out of step with the levels"
