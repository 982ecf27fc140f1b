"""Persistent state of the exchange; each model owns its invariants as database constraints."""

from decimal import Decimal

from django.db import models
from django.db.models import Q
from django.db.models.functions import Concat, Upper

# Explicit precision for every amount: 20 integer digits and 18 decimals (the smallest unit of ETH).
AMOUNT_DIGITS = 38
AMOUNT_DECIMALS = 18


def amount_field(**options) -> models.DecimalField:
    """A decimal column wide enough for any price, quantity or notional of any asset."""
    return models.DecimalField(max_digits=AMOUNT_DIGITS, decimal_places=AMOUNT_DECIMALS, **options)


class TradingPair(models.Model):
    """A market where `base_asset` is bought and sold for `quote_asset`, with its price and size grid.

    Prices are multiples of `tick_size` and quantities multiples of `lot_size`: the engine counts in ticks
    and lots. `shard` names the matching worker that owns the pair's book.
    """

    class Status(models.TextChoices):
        TRADING = "trading", "Trading"
        HALTED = "halted", "Halted"

    symbol = models.CharField(max_length=20, unique=True, help_text="Base then quote asset, e.g. BTCUSDT.")
    base_asset = models.CharField(max_length=10)
    quote_asset = models.CharField(max_length=10)
    tick_size = amount_field(help_text="Smallest price step, in the quote asset.")
    lot_size = amount_field(help_text="Smallest quantity step, in the base asset.")
    min_notional = amount_field(default=Decimal("0"), help_text="Smallest price × quantity of an order.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.TRADING)
    shard = models.PositiveIntegerField(default=0)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["symbol"]
        constraints = [
            models.CheckConstraint(condition=Q(tick_size__gt=0), name="pair_tick_size_positive"),
            models.CheckConstraint(condition=Q(lot_size__gt=0), name="pair_lot_size_positive"),
            models.CheckConstraint(condition=Q(min_notional__gte=0), name="pair_min_notional_not_negative"),
            models.CheckConstraint(
                condition=Q(
                    symbol=Upper("symbol"), base_asset=Upper("base_asset"), quote_asset=Upper("quote_asset")
                ),
                name="pair_names_uppercase",
            ),
            models.CheckConstraint(
                condition=Q(symbol=Concat("base_asset", "quote_asset")), name="pair_symbol_is_base_then_quote"
            ),
        ]

    def __str__(self) -> str:
        return self.symbol

    def clean(self) -> None:
        """Accept lowercase input from forms: asset names and symbols are stored uppercase."""
        self.symbol = self.symbol.upper()
        self.base_asset = self.base_asset.upper()
        self.quote_asset = self.quote_asset.upper()
