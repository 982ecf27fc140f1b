"""The per-pair engine: sequence numbering, determinism, snapshot and restore, unit conversion."""
from decimal import Decimal

import pytest

from benchmarks.engine_workloads import CANCEL, PLACE, balanced, market_maker
from matching.engine import PairEngine, book_class
from matching.orders import CancelOrder, InvalidCommand, PlaceOrder, ReduceOrder
from matching.units import OffGridError, PairUnits


def as_commands(workload):
    """Workload tuples (verb, args) as the engine's command objects."""
    for verb, args in workload:
        if verb == PLACE:
            order_id, account, side, quantity, price, *rest = args
            options = dict(zip(("order_type", "time_in_force"), rest, strict=False))  # both optional
            yield PlaceOrder(order_id, account, side, quantity, price, **options)
        elif verb == CANCEL:
            yield CancelOrder(*args)
        else:
            yield ReduceOrder(*args)


def run_all(engine, commands):
    return [engine.apply(command) for command in commands]


def test_every_command_advances_the_sequence_by_one_rejected_ones_included(book_kind):
    engine = PairEngine("BTCUSDT", book_class(book_kind)())
    assert engine.apply(PlaceOrder(1, 1, "buy", 1, 100)) == (0, [("accepted", 1), ("rested", 1, 1),
                                                                ("level", "buy", 100, 1)])
    assert engine.apply(CancelOrder(99)) == (1, [("rejected", 99, "unknown_order")])
    assert engine.sequence == 2


def test_the_same_commands_twice_give_the_same_events(book_kind):
    commands = list(as_commands(balanced(20_000, seed=7)))
    first = run_all(PairEngine("X", book_class(book_kind)()), commands)
    second = run_all(PairEngine("X", book_class(book_kind)()), commands)
    assert first == second
    assert sum(1 for _, events in first for event in events if event[0] == "trade") > 1000


@pytest.mark.parametrize("restored_kind", ["legacy", "adaptive"])
def test_a_restored_engine_continues_exactly_as_the_original(book_kind, restored_kind):
    commands = list(as_commands(market_maker(20_000, seed=11)))
    original = PairEngine("X", book_class(book_kind)())
    run_all(original, commands[:12_000])
    restored = PairEngine.restore(original.snapshot(), restored_kind)
    assert restored.snapshot() == original.snapshot()
    assert run_all(restored, commands[12_000:]) == run_all(original, commands[12_000:])
    restored.book._check()


def test_a_restored_book_still_rejects_ids_it_has_seen(book_kind):
    engine = PairEngine("X", book_class(book_kind)())
    engine.apply(PlaceOrder(5, 1, "buy", 1, 100))
    engine.apply(CancelOrder(5))
    restored = PairEngine.restore(engine.snapshot(), book_kind)
    assert restored.apply(PlaceOrder(5, 1, "buy", 1, 100))[1] == [("rejected", 5, "duplicate_order_id")]


@pytest.mark.parametrize("fields, message", [
    (dict(side="up"), "side"),
    (dict(order_type="stop"), "order_type"),
    (dict(time_in_force="day"), "time_in_force"),
    (dict(self_trade="sometimes"), "self_trade"),
])
def test_a_command_outside_the_vocabulary_is_an_error_not_a_reject(fields, message):
    base = dict(order_id=1, account=1, side="buy", quantity=1, price=100)
    with pytest.raises(InvalidCommand, match=message):
        PlaceOrder(**{**base, **fields})


def test_unknown_book_kind_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown book 'fast'"):
        book_class("fast")


def test_units_convert_decimals_to_ticks_and_lots_and_back():
    units = PairUnits(Decimal("0.01"), Decimal("0.00001"))
    assert units.ticks_from_price(Decimal("50000.12")) == 5_000_012
    assert units.lots_from_quantity(Decimal("0.5")) == 50_000
    assert units.price_from_ticks(5_000_012) == Decimal("50000.12")
    assert units.quantity_from_lots(50_000) == Decimal("0.5")


def test_units_convert_beyond_decimals_default_28_digits_exactly():
    units = PairUnits(Decimal("0.01"), Decimal("0.00001"))
    ticks = 9_999_999_999_999_999_999_999                     # 22 digits: a price of 20 integer digits
    lots = 9_999_999_999_999_999_999_999_999                  # 25 digits
    assert units.price_from_ticks(ticks) == Decimal("99999999999999999999.99")
    assert units.ticks_from_price(Decimal("99999999999999999999.99")) == ticks
    notional = Decimal(f"{ticks * lots}E-7")                  # price × quantity: 47 digits, exact
    assert units.ticks_lots_from_notional(notional) == ticks * lots


def test_a_notional_stored_rounded_to_18_decimals_reloads_as_the_nearest_whole_count():
    units = PairUnits(Decimal("0.03"), Decimal("1E-17"))     # tick × lot = 3E-19, finer than the column
    stored = Decimal("0.000000000000000001")                 # 3 × 3E-19 = 9E-19, rounded to 18 decimals
    assert units.ticks_lots_from_notional(stored) == 3


@pytest.mark.parametrize("price", ["50000.123", "NaN", "Infinity", "-Infinity", "1E+500000"])
def test_units_refuse_prices_off_the_grid_or_not_finite(price):
    with pytest.raises(OffGridError):
        PairUnits(Decimal("0.01"), Decimal("1")).ticks_from_price(Decimal(price))
