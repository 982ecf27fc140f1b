"""A pair's 1-minute klines and its 24-hour ticker, kept by the market publisher from the trades it publishes.

Both are built from committed trades only, in trade-sequence order, so what a client sees live equals what
`GET /api/pairs/<symbol>/klines/?interval=1m` reads from the trade table afterwards. The ticker covers the
window of whole minutes that starts TICKER_MINUTES - 1 minutes before the current one: the last 24 hours to
the minute, as the exchanges' rolling tickers do. Keeping the aggregate of the minutes before the current one
makes a batch's ticker cost a few comparisons rather than a pass over 1,440 klines; that aggregate is rebuilt
when the minute changes.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from exchange.market.contract import iso_time, kline_json
from matching.units import amount_text

TICKER_MINUTES = 24 * 60
MINUTE = 60


def minute_of(moment: datetime) -> int:
    """The start of the moment's minute, in seconds since the epoch."""
    return int(moment.timestamp()) // MINUTE * MINUTE


@dataclass(slots=True)
class Kline:
    """The trades of one interval: open, high, low and close price, base and quote volume, trade count; and
    the sequence of its last trade, so a trade is never counted twice."""

    open_time: int                 # seconds since the epoch
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    base_volume: Decimal
    quote_volume: Decimal
    trade_count: int
    last_sequence: int

    @classmethod
    def first(cls, open_time: int, sequence: int, price: Decimal, quantity: Decimal) -> Kline:
        return cls(open_time, price, price, price, price, quantity, price * quantity, 1, sequence)

    def add(self, sequence: int, price: Decimal, quantity: Decimal) -> None:
        if price > self.high:
            self.high = price
        elif price < self.low:
            self.low = price
        self.close = price
        self.base_volume += quantity
        self.quote_volume += price * quantity
        self.trade_count += 1
        self.last_sequence = sequence

    def merged(self, later: Kline) -> Kline:
        """This interval followed by `later`, as one."""
        return Kline(self.open_time, self.open, max(self.high, later.high), min(self.low, later.low), later.close,
                     self.base_volume + later.base_volume, self.quote_volume + later.quote_volume,
                     self.trade_count + later.trade_count, later.last_sequence)

    def as_json(self) -> dict:
        return kline_json((self.open_time, self.open, self.high, self.low, self.close, self.base_volume,
                           self.quote_volume, self.trade_count), "1m")


class MarketStats:
    """One pair's klines of the ticker window and its ticker."""

    def __init__(self, symbol: str, klines: list[Kline], last_sequence: int) -> None:
        self.symbol = symbol
        self.klines: dict[int, Kline] = {kline.open_time: kline for kline in klines}   # oldest first
        self.last_sequence = last_sequence     # of the newest trade counted
        self.minute = 0                        # the current minute, whose kline is not in `earlier`
        self.earlier: Kline | None = None      # the window's minutes before the current one, merged

    def add_trades(self, moment: datetime, trades: list[tuple[int, Decimal, Decimal]]) -> list[Kline]:
        """Counts the trades (sequence, price, quantity) executed at `moment`; returns the klines they changed.
        Trades counted already (a sequence not above the last one) are skipped."""
        self.advance(moment)
        minute = minute_of(moment)
        kline = self.klines.get(minute)
        counted = False
        for sequence, price, quantity in trades:
            if sequence <= self.last_sequence:
                continue
            if kline is None:
                kline = self.klines[minute] = Kline.first(minute, sequence, price, quantity)
            else:
                kline.add(sequence, price, quantity)
            self.last_sequence, counted = sequence, True
        if kline is None or not counted:          # counted: the minute's kline exists
            return []
        if minute < self.minute:        # committed just before the minute turned, published just after
            self._merge_earlier()
        return [kline]

    def advance(self, moment: datetime) -> bool:
        """Moves the window to `moment`'s minute; True when it moved (the ticker's window changed)."""
        minute = minute_of(moment)
        if minute <= self.minute:
            return False
        self.minute = minute
        oldest = minute - (TICKER_MINUTES - 1) * MINUTE
        for open_time in [open_time for open_time in self.klines if open_time < oldest]:
            del self.klines[open_time]
        self._merge_earlier()
        return True

    def _merge_earlier(self) -> None:
        self.earlier = None
        for open_time in sorted(self.klines):
            if open_time < self.minute:
                kline = self.klines[open_time]
                self.earlier = kline if self.earlier is None else self.earlier.merged(kline)

    def ticker(self, now: datetime) -> dict:
        """The ticker of the window ending at `now` (call `advance(now)` first)."""
        current = self.klines.get(self.minute)
        window = self.earlier.merged(current) if self.earlier and current else self.earlier or current
        start = datetime.fromtimestamp(self.minute - (TICKER_MINUTES - 1) * MINUTE, UTC)
        figures = {"pair": self.symbol, "open": None, "high": None, "low": None, "last": None,
                   "base_volume": "0", "quote_volume": "0", "trade_count": 0}
        if window is not None:
            figures.update(open=amount_text(window.open), high=amount_text(window.high),
                           low=amount_text(window.low), last=amount_text(window.close),
                           base_volume=amount_text(window.base_volume),
                           quote_volume=amount_text(window.quote_volume), trade_count=window.trade_count)
        return figures | {"window_start": iso_time(start), "window_end": iso_time(now)}


def window_start_for(now: datetime) -> datetime:
    """The first moment of the ticker window that ends at `now`: the reads of the klines start there."""
    return datetime.fromtimestamp(minute_of(now) - (TICKER_MINUTES - 1) * MINUTE, UTC)

