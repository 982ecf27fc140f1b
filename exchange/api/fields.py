"""The amount field every API of the project reads and writes prices and quantities with."""
import re
from decimal import Decimal

from rest_framework import serializers

from exchange.models import AMOUNT_DECIMALS, AMOUNT_DIGITS
from matching.units import amount_text

WRITTEN_AMOUNT = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")      # what an amount string may look like at all


class AmountField(serializers.DecimalField):
    """A price or quantity: a decimal string (a JSON number is accepted too) with at most 20 integer
    digits and 18 decimals, positive unless `allow_zero`. Written back normalized: "0.5", "50000.01".

    A string is written with the ASCII digits and one decimal point and nothing else: Python's Decimal would
    also read full-width or Arabic-Indic digits, exponents and padding, which no client means to send."""

    default_error_messages = {
        "not_positive": "Must be greater than zero.",
        "negative": "Must be zero or more.",
        "not_plain": 'Must be written with the digits 0-9 and at most one decimal point, like "0.5".',
    }

    def __init__(self, *, allow_zero: bool = False, **kwargs) -> None:
        kwargs.setdefault("max_digits", AMOUNT_DIGITS)
        kwargs.setdefault("decimal_places", AMOUNT_DECIMALS)
        super().__init__(**kwargs)
        self.allow_zero = allow_zero

    def to_internal_value(self, data) -> Decimal:
        if isinstance(data, str) and not WRITTEN_AMOUNT.fullmatch(data):
            self.fail("not_plain")
        value = super().to_internal_value(data)
        if value < 0:
            self.fail("negative" if self.allow_zero else "not_positive")
        if value == 0 and not self.allow_zero:
            self.fail("not_positive")
        return value

    def quantize(self, value: Decimal) -> Decimal:
        # Kept as given (the precision is already validated, so the column stores it exactly): error
        # messages then quote the number the user sent, not it padded to 18 decimals.
        return value

    def to_representation(self, value) -> str:
        return amount_text(value)
