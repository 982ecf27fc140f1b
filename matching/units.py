"""The one place where a pair's Decimal prices and quantities become the engine's integer ticks and lots."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation
from functools import cache

# Exact arithmetic for every amount the database can hold (prices and quantities of 38 digits, notionals of
# 58): the default context keeps 28 significant digits and rounds the rest away without a word.
EXACT = Context(prec=120)


def amount_text(value: Decimal) -> str:
    """An amount as the API and the market data write it: no exponent, no trailing zeros, every digit kept
    (`Decimal.normalize` alone rounds to the default context's 28 digits, and a quote volume has up to 58)."""
    return f"{EXACT.normalize(Decimal(value)):f}"


class OffGridError(ValueError):
    """A price or quantity that is not a whole number of the pair's ticks or lots."""


@dataclass(frozen=True, slots=True)
class PairUnits:
    """A pair's tick size (price step) and lot size (quantity step)."""

    tick_size: Decimal
    lot_size: Decimal

    def __post_init__(self) -> None:
        if not (self.tick_size > 0 and self.lot_size > 0):
            raise ValueError("tick_size and lot_size must be positive")

    def price_text(self, ticks: int) -> str:
        """`amount_text(price_from_ticks(ticks))`, without Decimal arithmetic for a power-of-ten tick."""
        return _steps_text(ticks, self.tick_size)

    def quantity_text(self, lots: int) -> str:
        """`amount_text(quantity_from_lots(lots))`, without Decimal arithmetic for a power-of-ten lot."""
        return _steps_text(lots, self.lot_size)

    def ticks_from_price(self, price: Decimal) -> int:
        return _whole_steps(price, self.tick_size, "price", "tick size")

    def price_from_ticks(self, ticks: int) -> Decimal:
        return EXACT.multiply(self.tick_size, ticks)

    def lots_from_quantity(self, quantity: Decimal) -> int:
        return _whole_steps(quantity, self.lot_size, "quantity", "lot size")

    def quantity_from_lots(self, lots: int) -> Decimal:
        return EXACT.multiply(self.lot_size, lots)

    def ticks_lots_from_notional(self, notional: Decimal) -> int:
        """An order's filled notional (Σ price × quantity) as the engine counts it, Σ ticks × lots: the nearest
        whole number, because the column keeps 18 decimals and a grid whose tick × lot has more (tick 0.03,
        lot 1e-17) is stored rounded. Refusing such a value would keep the shard's worker from starting."""
        steps = EXACT.divide(notional, EXACT.multiply(self.tick_size, self.lot_size))
        return int(steps.to_integral_value(rounding=ROUND_HALF_EVEN))


def _steps_text(steps: int, step: Decimal) -> str:
    """The text of `steps` × `step`. The market data writes thousands of amounts a batch, and the grids of the
    big pairs are powers of ten (0.01, 0.00001), where the text is the integer with a point moved: a tenth of
    Decimal's cost."""
    exponent = _power_of_ten(step)
    if exponent is None or steps < 0:
        return amount_text(EXACT.multiply(step, steps))
    if exponent >= 0:
        return str(steps * 10**exponent) if steps else "0"
    digits = str(steps).rjust(-exponent + 1, "0")
    whole, fraction = digits[:exponent], digits[exponent:].rstrip("0")
    return f"{whole}.{fraction}" if fraction else whole


@cache
def _power_of_ten(step: Decimal) -> int | None:
    """k when `step` is 10^k, else None."""
    sign, digits, exponent = step.normalize(EXACT).as_tuple()
    return exponent if digits == (1,) and not sign and isinstance(exponent, int) else None


def _whole_steps(value: Decimal, step: Decimal, what: str, step_name: str) -> int:
    if not isinstance(value, Decimal):
        raise TypeError(f"{what} must be a Decimal, not {type(value).__name__}")
    if not value.is_finite():
        raise OffGridError(f"{what} must be a finite number")
    try:
        steps, rest = EXACT.divmod(value, step)
    except InvalidOperation as error:
        raise OffGridError(f"{what} {value} is too large") from error
    if rest != 0:
        raise OffGridError(f"{what} {value} is not a multiple of the {step_name} {step.normalize()}")
    return int(steps)
