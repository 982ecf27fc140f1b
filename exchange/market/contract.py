"""The published market data: what the matching worker publishes after each committed batch, and where.

The contract between the worker (the only writer) and the web (readers: websocket consumers and the REST
market data):

- **State in Redis**, per pair, rewritten by each batch in one transaction: the book's levels
  (`md:<PAIR>:bids`, `md:<PAIR>:asks`: price → total quantity, as decimal strings), the sequence the book is
  at (`md:<PAIR>:sequence`, the engine's command sequence after the batch), the recent trades
  (`md:<PAIR>:trades`, newest first, the last RECENT_TRADES), the 24-hour ticker (`md:<PAIR>:ticker`) and the
  newest 1-minute kline (`md:<PAIR>:kline`), both JSON as the API writes them. The REST market data reads it.
- **Messages on the channel layer**, published in the transaction that writes the state they describe (the
  worker PUBLISHes them where channels-redis's pub/sub layer carries a group's messages, `group_channel`): one
  per pair per batch to the group `market.<PAIR>`
  (`update`: the levels that changed, the trades, the klines they changed and the ticker, the sequence before
  and after, the checksum), a `snapshot` when the worker (re)starts serving a pair or finds the state in Redis
  gone, a `ticker` for every pair when the minute turns (its window moved), and one per owner per batch to
  `orders.<user id>` (their orders' new states).

A client keeps a book by taking a snapshot at sequence S and applying every update whose
`previous_sequence` is its current sequence; an update whose `previous_sequence` is ahead of it means it
missed one, and it takes a new snapshot. The checksum proves its top levels equal the worker's.
"""
from __future__ import annotations

import heapq
import zlib
from datetime import UTC, datetime

from matching.units import amount_text

RECENT_TRADES = 500
CHECKSUM_LEVELS = 10

# The `type` of each message the worker publishes on the channel layer. Channels hands a message of a consumer's
# own channel to the method named after its type (`orders.update` → `orders_update`); the market hub reads the
# others by these names.
MARKET_UPDATE = "market.update"
MARKET_SNAPSHOT = "market.snapshot"
MARKET_TICKER = "market.ticker"
ORDERS_UPDATE = "orders.update"


def market_group(symbol: str) -> str:
    return f"market.{symbol}"


def orders_group(user_id: int) -> str:
    return f"orders.{user_id}"


def group_channel(group: str, prefix: str) -> str:
    """The Redis pub/sub channel on which channels-redis's pub/sub layer carries a group's messages: its
    `group_send` PUBLISHes the serialized message there (a test holds the two equal)."""
    return f"{prefix}__group__{group}"


def book_key(symbol: str, side: str) -> str:
    return f"md:{symbol}:{'bids' if side == 'buy' else 'asks'}"


def sequence_key(symbol: str) -> str:
    return f"md:{symbol}:sequence"


def trades_key(symbol: str) -> str:
    return f"md:{symbol}:trades"


def ticker_key(symbol: str) -> str:
    return f"md:{symbol}:ticker"


def kline_key(symbol: str) -> str:
    return f"md:{symbol}:kline"


def written_whole_key(symbol: str) -> str:
    """When the pair's state was last written whole (Unix time): a warm-up waits for a time after its request."""
    return f"md:{symbol}:written-whole"


def listening_owners_key() -> str:
    """How many `ws/orders/` streams each user has open, across the websocket processes: the worker builds
    order updates for these users only (building them for everyone cost a third of a publication)."""
    return "md:listening-owners"


def checksum(bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> int:
    """CRC32 of the top CHECKSUM_LEVELS levels of each side, best first, interleaved bid then ask:
    `price:quantity` joined by `:`, amounts as the API writes them ("50000.01", "0.5")."""
    parts: list[str] = []
    for index in range(CHECKSUM_LEVELS):
        for side in (bids, asks):
            if index < len(side):
                parts.extend(side[index])
    return zlib.crc32(":".join(parts).encode())


def sorted_levels(levels: dict[str, str], side: str, limit: int | None = None) -> list[tuple[str, str]]:
    """A side's levels, best price first (bids highest, asks lowest), at most `limit`."""
    if limit is not None and limit < len(levels):
        pick = heapq.nlargest if side == "buy" else heapq.nsmallest
        return pick(limit, levels.items(), key=_price_order)
    return sorted(levels.items(), key=_price_order, reverse=side == "buy")


def _price_order(level: tuple[str, str]) -> tuple[int, str, str]:
    """The order of prices as the API writes them (digits, at most one point, no sign, no padding, no trailing
    zeros): by the length of the whole part, then its digits, then the fraction's digits. A third of the cost of
    making a Decimal of each, which a depth read did for every level of a side."""
    whole, _, fraction = level[0].partition(".")
    return len(whole), whole, fraction


def iso_time(moment: datetime) -> str:
    """A time as the API writes it (DRF's way): ISO 8601 in UTC with a `Z`."""
    return moment.isoformat().replace("+00:00", "Z")


def kline_json(row: tuple, interval: str) -> dict:
    """A kline as the API and the streams write it, from (open time in epoch seconds, open, high, low, close,
    base volume, quote volume, trade count, ...)."""
    open_time, open_price, high, low, close, base_volume, quote_volume, trade_count = row[:8]
    return {"open_time": iso_time(datetime.fromtimestamp(open_time, UTC)), "interval": interval,
            "open": amount_text(open_price), "high": amount_text(high), "low": amount_text(low),
            "close": amount_text(close), "base_volume": amount_text(base_volume),
            "quote_volume": amount_text(quote_volume), "trade_count": trade_count}
