"""A pair's engine: one book, the per-pair command sequence, snapshot and restore.

The engine numbers every command (rejected ones included) so that a resting order's time priority,
the market-data sequence and the worker's checkpoint all come from one counter.
"""
from __future__ import annotations

from dataclasses import dataclass

from matching.adaptive_book import AdaptiveOrderBook
from matching.legacy_book import LegacyOrderBook
from matching.orders import BookSnapshot, Command, Event, book_call

OrderBook = LegacyOrderBook | AdaptiveOrderBook
BOOKS: dict[str, type[OrderBook]] = {"legacy": LegacyOrderBook, "adaptive": AdaptiveOrderBook}


@dataclass(frozen=True, slots=True)
class EngineSnapshot:
    """A pair's engine state: the sequence of the next command and its book."""

    symbol: str
    sequence: int
    book: BookSnapshot


class PairEngine:
    """Runs one pair's commands through a book, numbering them from 0."""

    def __init__(self, symbol: str, book: OrderBook | None = None, sequence: int = 0) -> None:
        self.symbol = symbol
        self.book = book if book is not None else LegacyOrderBook()
        self.sequence = sequence

    def apply(self, command: Command) -> tuple[int, list[Event]]:
        """Executes one command; returns its sequence number and its events."""
        events = execute(self.book, command)
        sequence = self.sequence
        self.sequence = sequence + 1
        return sequence, events

    def place(self, order_id: int, account: int, side: str, quantity: int, price: int | None, order_type: str,
              time_in_force: str, self_trade: str) -> tuple[int, list[Event]]:
        """`apply(PlaceOrder(...))` for callers whose fields are already validated (the worker's rows are
        checked by the table's constraints); skipping the command object saves ~3 µs an order."""
        events = self.book.place(order_id, account, side, quantity, price, order_type, time_in_force, self_trade)
        sequence = self.sequence
        self.sequence = sequence + 1
        return sequence, events

    def snapshot(self) -> EngineSnapshot:
        return EngineSnapshot(self.symbol, self.sequence, self.book.snapshot())

    @classmethod
    def restore(cls, snapshot: EngineSnapshot, book_kind: str = "legacy") -> PairEngine:
        book = book_class(book_kind).from_snapshot(snapshot.book)
        return cls(snapshot.symbol, book, snapshot.sequence)


def execute(book: OrderBook, command: Command) -> list[Event]:
    """Runs one command against a book (no sequence: the caller owns it)."""
    verb, args = book_call(command)
    return getattr(book, verb)(*args)


def book_class(kind: str) -> type[OrderBook]:
    try:
        return BOOKS[kind]
    except KeyError:
        raise ValueError(f"unknown book {kind!r}; expected one of {sorted(BOOKS)}") from None
