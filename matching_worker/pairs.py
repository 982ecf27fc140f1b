"""The shard's pairs as the worker holds them, rebuilt from the database: each pair's engine in the mode it
was committed in, its units, and the fills of its live orders (to write their rows in absolute terms).

A book is rebuilt from the engine checkpoint (`EngineState`: mode, percentage, settings, breaker, sequences)
and the resting orders in priority order; nothing else is needed, because the checkpoint and the orders are
committed in the same transaction by every batch.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from importlib import import_module

from django.db import connection

from matching.adaptive_book import AdaptiveOrderBook
from matching.circuit_breaker import CircuitBreaker
from matching.legacy_book import LegacyOrderBook
from matching.migration import ADAPTIVE_ONLY, LEGACY_ONLY, MigratingEngine, RolloutSettings
from matching.orders import BookSnapshot, RestingOrder
from matching.units import PairUnits


@dataclass(slots=True)
class Fill:
    """What the worker knows of a live order, in lots and ticks, to write its row in absolute terms."""

    side: str
    quantity: int          # lots: filled + remaining
    owner: int             # whose order it is: its private updates go to them
    filled: int = 0        # lots
    notional: int = 0      # sum of ticks × lots of its trades


@dataclass
class PairRuntime:
    """One pair of the shard: its engine, its units and the live orders' fills."""

    pair_id: int
    symbol: str
    units: PairUnits
    engine: MigratingEngine
    trade_sequence: int
    last_inbox_sequence: int
    fills: dict = field(default_factory=dict)       # order id -> Fill, for orders on the book
    changed_levels: dict = field(default_factory=dict)   # (side, ticks) -> lots now, in the batch being computed
    published_sequence: int = 0                    # the engine's sequence the last batch handed to publish left
    republish: bool = False                        # the batch being computed asks for the whole market published

def load_pairs(shard: int, served: dict[int, PairRuntime], adaptive_class: type) -> dict[int, PairRuntime]:
    """The shard's pairs not in `served`, each rebuilt from its committed state."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, symbol, tick_size, lot_size FROM exchange_tradingpair"
            " WHERE shard = %s AND NOT id = ANY(%s::bigint[]) ORDER BY id", [shard, list(served)])
        pairs = cursor.fetchall()
    return {pair_id: load_pair(pair_id, symbol, PairUnits(tick_size, lot_size), adaptive_class)
            for pair_id, symbol, tick_size, lot_size in pairs}


def load_pair(pair_id: int, symbol: str, units: PairUnits, adaptive_class: type) -> PairRuntime:
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO exchange_enginestate (pair_id, mode, percentage, settings, breaker_state, breaker_trips,"
            " command_sequence, trade_sequence, last_inbox_sequence, updated_at)"
            " VALUES (%s, 'legacy_only', 0, '{}', 'closed', 0, 0, 0, 0, now()) ON CONFLICT (pair_id) DO NOTHING",
            [pair_id])
        cursor.execute("SELECT mode, percentage, settings, breaker_state, breaker_trips, command_sequence,"
                       " trade_sequence, last_inbox_sequence FROM exchange_enginestate WHERE pair_id = %s",
                       [pair_id])
        mode, percentage, settings, breaker_state, trips, command_sequence, trade_sequence, last_inbox = (
            cursor.fetchone())
        cursor.execute(
            "SELECT id, owner_id, side, price, quantity, filled_quantity, filled_notional FROM exchange_order"
            " WHERE pair_id = %s AND status IN ('open', 'partially_filled')"
            " ORDER BY side, CASE WHEN side = 'buy' THEN -price ELSE price END, priority_sequence", [pair_id])
        rows = cursor.fetchall()
    resting, fills = [], {}
    for order_id, owner_id, side, price, quantity, filled, notional in rows:
        fill = Fill(side, units.lots_from_quantity(quantity), owner_id, units.lots_from_quantity(filled),
                    units.ticks_lots_from_notional(notional))
        fills[order_id] = fill
        resting.append(RestingOrder(order_id, owner_id, side, units.ticks_from_price(price),
                                    fill.quantity - fill.filled))
    migration = RolloutSettings.from_json(json_value(settings))
    breaker = CircuitBreaker(migration.breaker, breaker_state, trips, now=time.monotonic())
    engine = engine_in_mode(symbol, mode, BookSnapshot(tuple(resting), frozenset()), command_sequence,
                            percentage, migration, breaker, adaptive_class)
    return PairRuntime(pair_id, symbol, units, engine, trade_sequence, last_inbox, fills,
                       published_sequence=engine.sequence)


def engine_in_mode(symbol: str, mode: str, snapshot: BookSnapshot, sequence: int, percentage: int,
                   migration: RolloutSettings, breaker: CircuitBreaker,
                   adaptive_class: type[AdaptiveOrderBook]) -> MigratingEngine:
    """The pair's engine in the mode it was committed in: a restarted worker resumes mid-migration."""
    legacy = None if mode == ADAPTIVE_ONLY else LegacyOrderBook.from_snapshot(snapshot)
    adaptive = adaptive_class.from_snapshot(snapshot) if mode != LEGACY_ONLY else None
    return MigratingEngine(symbol, legacy, adaptive, sequence, percentage, migration, breaker, adaptive_class)


def adaptive_book_class() -> type[AdaptiveOrderBook]:
    """The adaptive book implementation: `MATCHING_ADAPTIVE_BOOK=module:Class` swaps it (the tests' fault
    injectors use this); by default the real one."""
    path = os.environ.get("MATCHING_ADAPTIVE_BOOK", "")
    if not path:
        return AdaptiveOrderBook
    module, _, name = path.partition(":")
    return getattr(import_module(module), name)


def json_value(value: object) -> dict:
    """A jsonb column read with a raw cursor: Django's backend leaves it as text."""
    if isinstance(value, str):
        return json.loads(value) if value else {}
    return dict(value) if isinstance(value, dict) else {}
