"""The adaptive order book: the fast implementation of MATCHING_RULES.md.

Same events as the legacy book, built for CPython's speed and for memory that follows the resting
orders, not the price range:

- Each side is a dict of price levels plus a binary heap of its prices (C `heapq`): O(1) best price,
  O(log n) new level, and no structure sized by the price range. Emptied levels leave the heap lazily;
  the heap is rebuilt from the live levels once stale entries outnumber them, so it never holds more
  than about twice the live prices.
- A level is one list: a five-slot header followed by its orders in time priority, so a level with one
  order is one small list (a separate queue list cost ~55 bytes a resting order on the deep book). The
  queue keeps a head index instead of shifting, and a cancel in the middle only marks its order dead
  where it stands; the queue compacts itself once dead entries outnumber live ones. A level is empty
  exactly when its total is zero (every live order has a positive remainder), so no live count is kept.
- Orders are small lists indexed by constant positions instead of objects: building a list costs about
  a third of a `__slots__` instance, and the hot path builds one per resting order.
- Duplicate order ids: ids arrive in ascending order, and often consecutive, so the book keeps the run
  of consecutive ids it saw last as two integers: the next id costs one comparison (the bitmap write it
  replaces was ~150 ns, a tenth of a command: shifts and masks on ints are not specialised in CPython
  3.11). Ids outside the run, a run closed by a gap and ids that arrive out of order, go into
  per-32768-id bitmaps (4 KiB each): about a bit per id, so a long-running book does not grow with
  every order it has ever seen the way a set would. Ids that always come past a gap (one sequence
  shared by many books) close a one-id run each time and cost about what the bitmap alone did.

Layouts (the positions are spelled out at each use, with the field name in a comment):
    order = [remaining, account, order_id, level]
    level = [total, head, dead, price, side, order, order, ...]   (orders from position 5)
The hot paths bind attributes to locals and inline the common cases (a resting limit order, a cancel,
a taker filling against the makers at the touch); each trick was kept only where an interleaved A/B
run of the engine benchmark showed it pays.
"""
from __future__ import annotations

from heapq import heapify, heappop, heappush, nlargest, nsmallest
from math import inf

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

_FIRST_ORDER = 5           # position of a level's first queue entry, after its header
_CHUNK_SHIFT = 15          # 32768 order ids per bitmap chunk
_CHUNK_BYTES = 1 << 12     # 32768 bits
_CHUNK_MASK = _CHUNK_BYTES - 1
_HEAP_SLACK = 64           # stale heap entries tolerated before the ratio rule applies


class AdaptiveOrderBook:
    """One pair's book, tuned for throughput; event-for-event identical to the legacy book."""

    __slots__ = ("_orders", "_bid_levels", "_ask_levels", "_bid_heap", "_ask_heap",
                 "_highest_id", "_run_start", "_seen_chunks")

    def __init__(self) -> None:
        self._orders: dict = {}            # order_id -> order
        self._bid_levels: dict = {}        # price -> level
        self._ask_levels: dict = {}
        self._bid_heap: list = []          # -price of bid levels; the top is always live
        self._ask_heap: list = []          # price of ask levels; the top is always live
        # Ids seen: the run _run_start.._highest_id, and the bitmaps for every other.
        self._highest_id = -1              # every id above it is new
        self._run_start = 0                # the run is empty while it starts above _highest_id
        self._seen_chunks: dict = {}       # order_id >> _CHUNK_SHIFT -> bytearray bitmap

    # ---- commands ----------------------------------------------------------------------------
    def place(self, order_id: int, account: int, side: str, quantity: int, price: int | None = None,
              order_type: str = "limit", time_in_force: str = GTC,
              self_trade: str = EXPIRE_TAKER) -> list[Event]:
        # _remember inlined for the common case, an id above all seen so far: one comparison, and no int
        # allocated (the difference of consecutive ids is a cached small int; `highest + 1` would not be).
        highest = self._highest_id
        if order_id > highest:
            if order_id - highest != 1:
                self._start_id_run(order_id)
            self._highest_id = order_id
        elif not self._remember_older_id(order_id):
            return [(REJECTED, order_id, DUPLICATE_ORDER_ID)]
        if quantity <= 0:
            return [(REJECTED, order_id, INVALID_QUANTITY)]
        if order_type == MARKET:
            opposite = self._ask_heap if side == BUY else self._bid_heap
            if opposite:
                return self._take(order_id, account, side, quantity, None, GTC, self_trade)
            return [(ACCEPTED, order_id), (CANCELLED, order_id, NO_LIQUIDITY)]
        if price is None or price <= 0:
            return [(REJECTED, order_id, INVALID_PRICE)]
        if side == BUY:
            opposite = self._ask_heap
            if opposite and opposite[0] <= price:
                return self._take(order_id, account, side, quantity, price, time_in_force, self_trade)
            levels = self._bid_levels
        else:
            opposite = self._bid_heap
            if opposite and -opposite[0] >= price:
                return self._take(order_id, account, side, quantity, price, time_in_force, self_trade)
            levels = self._ask_levels
        if time_in_force != GTC and time_in_force != POST_ONLY:
            if time_in_force == IOC:
                return [(ACCEPTED, order_id), (CANCELLED, order_id, IOC)]
            return [(REJECTED, order_id, FOK_UNFILLABLE)]
        # _rest inlined: resting is half of all commands on a live book, and the call cost 15%.
        level = levels.get(price)
        if level is None:
            order: list = [quantity, account, order_id, None]
            level = order[3] = levels[price] = [quantity, _FIRST_ORDER, 0, price, side, order]
            if side == BUY:
                heappush(self._bid_heap, -price)
            else:
                heappush(self._ask_heap, price)
            self._orders[order_id] = order
            return [(ACCEPTED, order_id), (RESTED, order_id, quantity), (LEVEL, side, price, quantity)]
        order = [quantity, account, order_id, level]
        level.append(order)
        total = level[0] + quantity             # total
        level[0] = total
        self._orders[order_id] = order
        return [(ACCEPTED, order_id), (RESTED, order_id, quantity), (LEVEL, side, price, total)]

    def cancel(self, order_id: int) -> list[Event]:
        order = self._orders.pop(order_id, None)
        if order is None:
            return [(REJECTED, order_id, UNKNOWN_ORDER)]
        level = order[3]                        # level
        total = level[0] - order[0]             # total - remaining
        level[0] = total
        order[0] = 0                            # dead: skipped wherever it still stands in the queue
        if not total:
            self._drop_level(level)
        elif level[-1] is order:                # the newest order: trim it and any dead ones before it
            level.pop()
            while not level[-1][0]:
                level.pop()
                level[2] -= 1                   # dead
            if level[1] * 2 >= len(level) + _FIRST_ORDER:
                self._compact(level)
        elif level[level[1]] is order:          # the oldest order
            self._advance_head(level)
        else:                                   # left dead in place until dead entries outnumber live ones
            dead = level[2] + 1
            level[2] = dead
            if dead * 2 > len(level) - level[1]:
                self._compact(level)
        return [(ACCEPTED, order_id), (CANCELLED, order_id, USER), (LEVEL, level[4], level[3], total)]

    def reduce(self, order_id: int, quantity: int) -> list[Event]:
        order = self._orders.get(order_id)
        if order is None:
            return [(REJECTED, order_id, UNKNOWN_ORDER)]
        remaining = order[0]
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
        order[0] = quantity
        return [(ACCEPTED, order_id), (LEVEL, level[4], level[3], level[0])]

    # ---- an incoming order that crosses -----------------------------------------------------------
    def _take(self, order_id: int, account: int, side: str, quantity: int, price: int | None,
              time_in_force: str, self_trade: str) -> list[Event]:
        """An incoming order that crosses (price None: a market order): trades best-first.

        Heap keys are prices for asks and -prices for bids, so one loop serves both sides: a level
        crosses while its key <= limit_key. The loop is one function on purpose (a call per level
        cost ~10% of the balanced workload); the level's total and head live in locals while the
        taker works through it and are written back once.
        """
        market = price is None
        if side == BUY:
            levels, heap, sign = self._ask_levels, self._ask_heap, 1
            limit_key = inf if price is None else price
        else:
            levels, heap, sign = self._bid_levels, self._bid_heap, -1
            limit_key = inf if price is None else -price
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
        key = heap[0]
        while True:
            level_price = key * sign
            level = levels[level_price]
            total = level[0]
            head = level[1]
            while True:
                maker = level[head]
                maker_remaining = maker[0]
                if not maker_remaining:                       # cancelled earlier, left in place
                    head += 1
                    level[2] -= 1                             # dead
                    continue
                if maker[1] == account and prevent:
                    if self_trade == EXPIRE_TAKER:
                        expired = True
                        break
                    events.append((CANCELLED, maker[2], SELF_TRADE))
                    del orders[maker[2]]
                    head += 1
                    total -= maker_remaining
                    if self_trade == EXPIRE_BOTH:
                        expired = True
                        break
                    if not total:
                        break
                    continue
                if maker_remaining > quantity:
                    events.append((TRADE, maker[2], order_id, level_price, quantity))
                    maker[0] = maker_remaining - quantity
                    total -= quantity
                    quantity = 0
                    break
                events.append((TRADE, maker[2], order_id, level_price, maker_remaining))
                del orders[maker[2]]                          # filled in full: it leaves the book
                head += 1
                total -= maker_remaining
                quantity -= maker_remaining
                if not total or not quantity:
                    break
            if total != level[0]:        # unchanged only when the taker expired at the level's first maker
                touched.append((LEVEL, level[4], level_price, total))
            if total:
                level[0] = total
                if head * 2 >= len(level) + _FIRST_ORDER:     # consumed entries are at least half the queue
                    del level[_FIRST_ORDER:head]
                    head = _FIRST_ORDER
                level[1] = head
            else:
                # the level at the heap's top emptied: drop it and any stale entries now on top
                del levels[level_price]
                del level[_FIRST_ORDER:]  # orders point at their level: break the cycles (see _drop_level)
                heappop(heap)
                while heap and heap[0] * sign not in levels:
                    heappop(heap)
            if expired:
                events.append((CANCELLED, order_id, SELF_TRADE))
                events += touched
                return events
            if not quantity or not heap:
                break
            key = heap[0]
            if key > limit_key:
                break
        if not quantity:
            events.append((DONE, order_id))
        elif price is None:                                  # a market order
            events.append((CANCELLED, order_id, NO_LIQUIDITY))
        elif time_in_force == IOC:
            events.append((CANCELLED, order_id, IOC))
        else:
            events.append((RESTED, order_id, quantity))
            touched.append((LEVEL, side, price, self._rest(order_id, account, side, quantity, price)))
        events += touched
        return events

    def _fillable(self, account: int, side: str, limit_key: float, self_trade: str, wanted: int) -> int:
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
            for maker in level[level[1]:]:                # from the head
                if not maker[0]:
                    continue
                if maker[1] == account and self_trade != STP_NONE:
                    if self_trade == EXPIRE_MAKER:
                        continue
                    return fillable
                fillable += maker[0]
        return fillable

    # ---- the book's structure --------------------------------------------------------------------
    def _rest(self, order_id: int, account: int, side: str, quantity: int, price: int) -> int:
        """Adds an order at the back of its level; returns the level's new total."""
        levels = self._bid_levels if side == BUY else self._ask_levels
        level = levels.get(price)
        if level is None:
            level = levels[price] = [0, _FIRST_ORDER, 0, price, side]
            if side == BUY:
                heappush(self._bid_heap, -price)
            else:
                heappush(self._ask_heap, price)
        order = [quantity, account, order_id, level]
        level.append(order)
        level[0] += quantity
        self._orders[order_id] = order
        return level[0]

    @staticmethod
    def _advance_head(level: list) -> None:
        """After a cancel of a level's oldest order (the level keeps live ones): the head moves past it and
        the dead entries behind it, and the queue compacts once the consumed entries are half of it."""
        head = level[1] + 1
        while not level[head][0]:
            head += 1
            level[2] -= 1                                   # dead
        level[1] = head
        if head * 2 >= len(level) + _FIRST_ORDER:
            AdaptiveOrderBook._compact(level)

    @staticmethod
    def _compact(level: list) -> None:
        """Rewrites a queue as its live orders only, from the head: a queue never holds more than about
        twice its live orders (the deep-book memory figure)."""
        level[_FIRST_ORDER:] = [entry for entry in level[level[1]:] if entry[0]]
        level[1] = _FIRST_ORDER
        level[2] = 0

    def _drop_level(self, level: list) -> None:
        """Removes an empty level, keeping each heap's top live and its stale entries bounded."""
        price = level[3]
        if level[4] == BUY:
            levels, heap, sign = self._bid_levels, self._bid_heap, -1
        else:
            levels, heap, sign = self._ask_levels, self._ask_heap, 1
        del levels[price]
        # Orders point at their level and the level points at them: clearing the level breaks the cycles
        # so reference counting frees it at once (left to the cyclic collector, dropped levels were ~40% of
        # the deep book's memory). The header stays for the caller's level event.
        del level[_FIRST_ORDER:]
        if heap[0] == price * sign:
            heappop(heap)
            while heap and heap[0] * sign not in levels:
                heappop(heap)
        if len(heap) > 2 * len(levels) + _HEAP_SLACK:
            heap[:] = [price * sign for price in levels]
            heapify(heap)

    # ---- order ids seen --------------------------------------------------------------------------
    def _remember(self, order_id: int) -> bool:
        """Records an order id; False when it was seen before. `place` inlines the first branch."""
        if order_id > self._highest_id:
            if order_id - self._highest_id != 1:
                self._start_id_run(order_id)
            self._highest_id = order_id
            return True
        return self._remember_older_id(order_id)

    def _start_id_run(self, order_id: int) -> None:
        """An id past a gap above every id seen: the run so far goes into the bitmaps, a new one starts.

        With one id sequence shared by many books most ids come past a gap and the run so far is that one
        id: it is set inline, so such a stream costs about what the bitmap alone cost before runs were kept.
        """
        start = self._run_start
        if start == self._highest_id:
            chunk = self._seen_chunks.get(start >> _CHUNK_SHIFT)
            if chunk is None:
                chunk = self._seen_chunks[start >> _CHUNK_SHIFT] = bytearray(_CHUNK_BYTES)
            chunk[(start >> 3) & _CHUNK_MASK] |= 1 << (start & 7)
        elif start < self._highest_id:
            self._mark_range(start, self._highest_id + 1)
        self._run_start = order_id

    def _remember_older_id(self, order_id: int) -> bool:
        """Records an id at or below the highest seen; False when it was seen before."""
        if order_id >= self._run_start:
            return False
        chunk = self._chunk(order_id >> _CHUNK_SHIFT)
        index = (order_id >> 3) & _CHUNK_MASK
        bit = 1 << (order_id & 7)
        if chunk[index] & bit:
            return False
        chunk[index] |= bit
        return True

    def _chunk(self, chunk_key: int) -> bytearray:
        chunk = self._seen_chunks.get(chunk_key)
        if chunk is None:
            chunk = self._seen_chunks[chunk_key] = bytearray(_CHUNK_BYTES)
        return chunk

    def _mark_range(self, start: int, end: int) -> None:
        """Sets the bitmap bits of ids start..end-1: a short run bit by bit, a long one in whole-byte slices,
        so folding in a run of millions of ids costs a few hundred byte copies, not millions of steps."""
        if end - start < 64:
            for order_id in range(start, end):
                self._chunk(order_id >> _CHUNK_SHIFT)[(order_id >> 3) & _CHUNK_MASK] |= 1 << (order_id & 7)
            return
        aligned_start, aligned_end = (start + 7) & ~7, end & ~7
        self._mark_range(start, aligned_start)
        self._mark_range(aligned_end, end)
        first_byte, end_byte = aligned_start >> 3, aligned_end >> 3
        while first_byte < end_byte:
            chunk_key = first_byte >> (_CHUNK_SHIFT - 3)
            stop = min(end_byte, (chunk_key + 1) << (_CHUNK_SHIFT - 3))
            offset = first_byte & _CHUNK_MASK
            self._chunk(chunk_key)[offset:offset + stop - first_byte] = b"\xff" * (stop - first_byte)
            first_byte = stop

    def _seen_order_ids(self) -> list[int]:
        seen = list(range(self._run_start, self._highest_id + 1))
        for chunk_key, chunk in self._seen_chunks.items():
            base = chunk_key << _CHUNK_SHIFT
            for index, bits in enumerate(chunk):
                if bits:
                    seen.extend(base + index * 8 + bit for bit in range(8) if bits >> bit & 1)
        return seen

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
            RestingOrder(order[2], order[1], level[4], level[3], order[0])
            for level in levels for order in level[level[1]:] if order[0]
        )
        return BookSnapshot(resting, frozenset(self._seen_order_ids()))

    @classmethod
    def from_snapshot(cls, snapshot: BookSnapshot) -> AdaptiveOrderBook:
        book = cls()
        for order in snapshot.resting:
            book._rest(order.order_id, order.account, order.side, order.quantity, order.price)
        for order_id in sorted(snapshot.seen_order_ids):       # ascending: consecutive ids become runs
            book._remember(order_id)
        return book

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
        for heap, levels in ((self._bid_heap, self._bid_levels), (self._ask_heap, self._ask_levels)):
            assert len(heap) <= 2 * len(levels) + _HEAP_SLACK + 1, "stale heap entries unbounded"
        count = 0
        for side, levels in ((BUY, self._bid_levels), (SELL, self._ask_levels)):
            for price, level in levels.items():
                total, head, dead, level_price, level_side = level[:_FIRST_ORDER]
                assert level_price == price and level_side == side
                assert _FIRST_ORDER <= head < len(level), "head outside the queue"
                queue = level[head:]
                live = [order for order in queue if order[0]]
                assert live, f"empty level {side} {price}"
                assert dead == len(queue) - len(live), "dead count"
                assert head - _FIRST_ORDER < len(queue), "consumed entries are not compacted away"
                assert queue[-1][0], "the newest entry is dead"
                assert total == sum(order[0] for order in live), "level total"
                for order in live:
                    assert order[0] > 0 and order[3] is level
                    assert self._orders[order[2]] is order
                count += len(live)
        assert count == len(self._orders), "orders index out of step with the levels"
        self._check_seen_ids()

    def _check_seen_ids(self) -> None:
        """The run is well formed, no bitmap reaches above the highest id, and the run's ends are not in
        the bitmaps (ids enter them only when their run closes, or from below the run)."""
        start, highest = self._run_start, self._highest_id
        assert start <= highest + 1, "id run ends before it starts"
        for chunk_key, chunk in self._seen_chunks.items():
            assert len(chunk) == _CHUNK_BYTES, "bitmap chunk of the wrong size"
            assert chunk_key <= highest >> _CHUNK_SHIFT, "a bitmap holds ids above the highest seen"
        for order_id in (start, highest) if start <= highest else ():
            chunk = self._seen_chunks.get(order_id >> _CHUNK_SHIFT, bytes(_CHUNK_BYTES))
            assert not chunk[(order_id >> 3) & _CHUNK_MASK] >> (order_id & 7) & 1, "a run id is also in a bitmap"
