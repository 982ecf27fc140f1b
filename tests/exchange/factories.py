"""Small factories for the exchange's models: rows in the states the API and the worker leave them in."""

from datetime import datetime
from decimal import Decimal

from django.contrib.auth.models import User
from django.utils import timezone

from exchange.models import Order, Trade, TradingPair, WorkerHeartbeat


def make_user(username: str) -> User:
    # No password: hashing one costs ~0.3 s of CPU per user, and the API clients use tokens.
    return User.objects.create_user(username=username)


def make_order(owner: User, pair: TradingPair, *, side: str = "buy", price: str | None = "50000",
               quantity: str = "1", filled: str = "0", status: str = Order.Status.PENDING, **fields) -> Order:
    """An order as the worker would have left it; `filled` sets its filled quantity (at its own price)."""
    filled_quantity = Decimal(filled)
    order_price = Decimal(price) if price is not None else None
    return Order.objects.create(
        owner=owner, pair=pair, side=side, price=order_price, quantity=Decimal(quantity),
        order_type=Order.Type.LIMIT if price is not None else Order.Type.MARKET,
        filled_quantity=filled_quantity,
        filled_notional=filled_quantity * (order_price or 0),
        average_fill_price=order_price if filled_quantity else None,
        status=status, **fields,
    )


def make_resting_order(owner: User, pair: TradingPair, **fields) -> Order:
    """An open (or, with `filled`, partially filled) limit order on the book."""
    partially = Decimal(fields.get("filled", "0")) > 0
    status = Order.Status.PARTIALLY_FILLED if partially else Order.Status.OPEN
    return make_order(owner, pair, status=status, **fields)


def make_trade(pair: TradingPair, sequence: int, price: str, quantity: str, *, maker: Order, taker: Order,
               executed_at: datetime | None = None) -> Trade:
    return Trade.objects.create(
        pair=pair, sequence=sequence, price=Decimal(price), quantity=Decimal(quantity),
        maker_order=maker, taker_order=taker, taker_side=taker.side, engine_sequence=sequence,
        executed_at=executed_at or timezone.now(),
    )


def make_live_worker(shard: int = 0) -> WorkerHeartbeat:
    """A heartbeat that stays fresh for the whole test (an hour's interval): the shard's worker serves."""
    now = timezone.now()
    return WorkerHeartbeat.objects.update_or_create(shard=shard, defaults=dict(
        pid=1, hostname="test", started_at=now, last_seen=now, interval_seconds=3600, stopped_at=None))[0]
