"""The vocabulary of the engine: commands in, events out, and the names both books use.

Events are plain tuples whose first item names the event; tuples are the cheapest thing CPython
builds (the adaptive book emits ~3 per command at >1M commands/s) and they compare and serialise
trivially, which the side-by-side verification of the two books relies on:

    ("accepted", order_id)
    ("rejected", order_id, reason)
    ("trade", maker_id, taker_id, price_ticks, quantity_lots)
    ("cancelled", order_id, reason)
    ("rested", order_id, remaining_lots)
    ("done", order_id)
    ("level", side, price_ticks, total_lots)
"""
from __future__ import annotations

from dataclasses import dataclass

BUY = "buy"
SELL = "sell"
SIDES = (BUY, SELL)

LIMIT = "limit"
MARKET = "market"
ORDER_TYPES = (LIMIT, MARKET)

GTC = "gtc"
IOC = "ioc"
FOK = "fok"
POST_ONLY = "post_only"
TIMES_IN_FORCE = (GTC, IOC, FOK, POST_ONLY)

EXPIRE_TAKER = "expire_taker"
EXPIRE_MAKER = "expire_maker"
EXPIRE_BOTH = "expire_both"
STP_NONE = "none"
SELF_TRADE_MODES = (EXPIRE_TAKER, EXPIRE_MAKER, EXPIRE_BOTH, STP_NONE)

ACCEPTED = "accepted"
REJECTED = "rejected"
TRADE = "trade"
CANCELLED = "cancelled"
RESTED = "rested"
DONE = "done"
LEVEL = "level"

# Reasons carried by rejected and cancelled events.
DUPLICATE_ORDER_ID = "duplicate_order_id"
INVALID_QUANTITY = "invalid_quantity"
INVALID_PRICE = "invalid_price"
FOK_UNFILLABLE = "fok_unfillable"
POST_ONLY_WOULD_CROSS = "post_only_would_cross"
UNKNOWN_ORDER = "unknown_order"
CANNOT_INCREASE = "cannot_increase"
USER = "user"
SELF_TRADE = "self_trade"
NO_LIQUIDITY = "no_liquidity"

Event = tuple


class InvalidCommand(ValueError):
    """A command whose fields are not even of the engine's vocabulary (a bug in the caller, not a reject)."""


@dataclass(frozen=True, slots=True)
class PlaceOrder:
    """Place a new order; price is in ticks (ignored for market orders), quantity in lots."""

    order_id: int
    account: int
    side: str
    quantity: int
    price: int | None = None
    order_type: str = LIMIT
    time_in_force: str = GTC
    self_trade: str = EXPIRE_TAKER

    def __post_init__(self) -> None:
        _require(self.side in SIDES, f"side must be one of {SIDES}, not {self.side!r}")
        _require(self.order_type in ORDER_TYPES, f"order_type must be one of {ORDER_TYPES}")
        _require(self.time_in_force in TIMES_IN_FORCE, f"time_in_force must be one of {TIMES_IN_FORCE}")
        _require(self.self_trade in SELF_TRADE_MODES, f"self_trade must be one of {SELF_TRADE_MODES}")


@dataclass(frozen=True, slots=True)
class CancelOrder:
    """Take a resting order off the book."""

    order_id: int


@dataclass(frozen=True, slots=True)
class ReduceOrder:
    """Lower a resting order's remaining quantity (in lots) without losing its place; zero cancels it."""

    order_id: int
    quantity: int


Command = PlaceOrder | CancelOrder | ReduceOrder


def book_call(command: Command) -> tuple[str, tuple]:
    """The book method a command calls and its arguments: the one place where a command becomes a call of
    `place`, `cancel` or `reduce`, which every book and engine has."""
    # `type(...) is`, not isinstance: a command is exactly one of the three, and this runs for every command.
    if type(command) is PlaceOrder:
        return "place", (command.order_id, command.account, command.side, command.quantity, command.price,
                         command.order_type, command.time_in_force, command.self_trade)
    if type(command) is CancelOrder:
        return "cancel", (command.order_id,)
    if type(command) is ReduceOrder:
        return "reduce", (command.order_id, command.quantity)
    raise InvalidCommand(f"not an order command: {command!r}")


def command_from_call(verb: str, args: tuple) -> Command:
    """The command behind a book call (`book_call`'s inverse), to record what a book was asked."""
    if verb == "place":
        order_id, account, side, quantity, price, order_type, time_in_force, self_trade = args
        return PlaceOrder(order_id, account, side, quantity, price=price, order_type=order_type,
                          time_in_force=time_in_force, self_trade=self_trade)
    return CancelOrder(*args) if verb == "cancel" else ReduceOrder(*args)


@dataclass(frozen=True, slots=True)
class RestingOrder:
    """One order of a book snapshot, listed in priority order."""

    order_id: int
    account: int
    side: str
    price: int
    quantity: int


@dataclass(frozen=True, slots=True)
class BookSnapshot:
    """Everything a book needs to continue exactly where another one stopped.

    `resting` lists bids best-first then asks best-first, FIFO within a price; `seen_order_ids`
    keeps duplicate detection exact across the restore.
    """

    resting: tuple[RestingOrder, ...]
    seen_order_ids: frozenset


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise InvalidCommand(message)
