"""A tiny, slow, brute-force model of MATCHING_RULES.md that the differential tests hold both books to.

It keeps every resting order in one list in arrival order and re-derives priority by sorting on each
step, so there is no data structure in it to get wrong.
"""
from __future__ import annotations

from matching.orders import (
    BUY,
    EXPIRE_BOTH,
    EXPIRE_MAKER,
    FOK,
    IOC,
    MARKET,
    POST_ONLY,
    STP_NONE,
)


class ReferenceBook:
    def __init__(self) -> None:
        self.resting: list[dict] = []     # in arrival order
        self.seen: set = set()

    def place(self, order_id, account, side, quantity, price=None, order_type="limit",
              time_in_force="gtc", self_trade="expire_taker"):
        if order_id in self.seen:
            return [("rejected", order_id, "duplicate_order_id")]
        self.seen.add(order_id)
        if quantity <= 0:
            return [("rejected", order_id, "invalid_quantity")]
        market = order_type == MARKET
        if not market and (price is None or price <= 0):
            return [("rejected", order_id, "invalid_price")]
        tif = MARKET if market else time_in_force
        crossed = self._crossed_makers(side, None if market else price)
        if tif == POST_ONLY and crossed:
            return [("rejected", order_id, "post_only_would_cross")]
        if tif == FOK and self._fillable(crossed, account, self_trade) < quantity:
            return [("rejected", order_id, "fok_unfillable")]
        events = [("accepted", order_id)]
        touched: list = []
        remaining = quantity
        expired = False
        for maker in crossed:
            if remaining == 0:
                break
            if maker["account"] == account and self_trade != STP_NONE:
                if self_trade in (EXPIRE_MAKER, EXPIRE_BOTH):
                    self.resting.remove(maker)
                    events.append(("cancelled", maker["id"], "self_trade"))
                    self._touch(touched, maker)
                if self_trade != EXPIRE_MAKER:
                    events.append(("cancelled", order_id, "self_trade"))
                    expired = True
                    break
                continue
            qty = min(remaining, maker["qty"])
            events.append(("trade", maker["id"], order_id, maker["price"], qty))
            remaining -= qty
            maker["qty"] -= qty
            if maker["qty"] == 0:
                self.resting.remove(maker)
            self._touch(touched, maker)
        if not expired:
            if remaining == 0:
                events.append(("done", order_id))
            elif tif == MARKET:
                events.append(("cancelled", order_id, "no_liquidity"))
            elif tif == IOC:
                events.append(("cancelled", order_id, "ioc"))
            else:
                order = {"id": order_id, "account": account, "side": side, "price": price, "qty": remaining}
                self.resting.append(order)
                events.append(("rested", order_id, remaining))
                self._touch(touched, order)
        return events + [("level", s, p, self._level_total(s, p)) for s, p in touched]

    def cancel(self, order_id):
        order = self._find(order_id)
        if order is None:
            return [("rejected", order_id, "unknown_order")]
        self.resting.remove(order)
        return [("accepted", order_id), ("cancelled", order_id, "user"),
                ("level", order["side"], order["price"], self._level_total(order["side"], order["price"]))]

    def reduce(self, order_id, quantity):
        order = self._find(order_id)
        if order is None:
            return [("rejected", order_id, "unknown_order")]
        if quantity < 0:
            return [("rejected", order_id, "invalid_quantity")]
        if quantity > order["qty"]:
            return [("rejected", order_id, "cannot_increase")]
        if quantity == order["qty"]:
            return [("accepted", order_id)]
        if quantity == 0:
            return self.cancel(order_id)
        order["qty"] = quantity
        return [("accepted", order_id),
                ("level", order["side"], order["price"], self._level_total(order["side"], order["price"]))]

    def depth(self, limit):
        levels = {}
        for o in self.resting:
            levels[(o["side"], o["price"])] = levels.get((o["side"], o["price"]), 0) + o["qty"]
        bids = sorted(((p, t) for (s, p), t in levels.items() if s == BUY), reverse=True)[:limit]
        asks = sorted((p, t) for (s, p), t in levels.items() if s != BUY)[:limit]
        return bids, asks

    def _crossed_makers(self, side, limit):
        if side == BUY:
            makers = [o for o in self.resting if o["side"] != BUY and (limit is None or o["price"] <= limit)]
            return sorted(makers, key=lambda o: o["price"])            # stable: arrival order kept
        makers = [o for o in self.resting if o["side"] == BUY and (limit is None or o["price"] >= limit)]
        return sorted(makers, key=lambda o: -o["price"])

    @staticmethod
    def _fillable(crossed, account, self_trade):
        fillable = 0
        for maker in crossed:
            if maker["account"] == account and self_trade != STP_NONE:
                if self_trade == EXPIRE_MAKER:
                    continue
                break
            fillable += maker["qty"]
        return fillable

    def _find(self, order_id):
        return next((o for o in self.resting if o["id"] == order_id), None)

    def _level_total(self, side, price):
        return sum(o["qty"] for o in self.resting if o["side"] == side and o["price"] == price)

    @staticmethod
    def _touch(touched, order):
        key = (order["side"], order["price"])
        if key not in touched:
            touched.append(key)
