"""Amounts written as text straight from ticks and lots are exactly what the Decimal way writes, on any grid."""
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from matching.units import PairUnits, amount_text

STEPS = st.one_of(st.sampled_from(["1", "10", "100", "0.1", "0.01", "0.00001", "0.000000000000000001", "0.03",
                                   "0.5", "2.5", "1E+3"]),
                  st.decimals(min_value=Decimal("0.000000000000000001"), max_value=Decimal("1000"), places=18,
                              allow_nan=False, allow_infinity=False).filter(lambda step: step > 0))


@given(step=STEPS, steps=st.one_of(st.integers(0, 10**6), st.integers(0, 10**40)))
def test_an_amount_written_from_its_steps_is_what_the_decimal_way_writes(step, steps):
    units = PairUnits(Decimal(step), Decimal(step))

    assert units.price_text(steps) == amount_text(units.price_from_ticks(steps))
    assert units.quantity_text(steps) == amount_text(units.quantity_from_lots(steps))
