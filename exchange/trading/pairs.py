"""Operations on trading pairs."""

from decimal import Decimal
from typing import NamedTuple

from django.db import transaction

from exchange.listener import ChangeCache
from exchange.models import TradingPair

# Pairs change only through the admin, and every change empties this cache in every process at its commit.
pairs_cache: ChangeCache[str, TradingPair] = ChangeCache(
    lambda symbol: TradingPair.objects.filter(symbol=symbol).first())


class PairSpec(NamedTuple):
    """The grid of a pair: what `TradingPair` needs besides its name."""

    base_asset: str
    quote_asset: str
    tick_size: Decimal
    lot_size: Decimal
    min_notional: Decimal


# The deployment guide's pairs, with grids close to what large spot exchanges use for them.
DEMO_PAIRS = (
    PairSpec("BTC", "USDT", Decimal("0.01"), Decimal("0.00001"), Decimal("10")),
    PairSpec("ETH", "USDT", Decimal("0.01"), Decimal("0.0001"), Decimal("10")),
    PairSpec("ADA", "USDT", Decimal("0.0001"), Decimal("0.1"), Decimal("5")),
    PairSpec("DOT", "USDT", Decimal("0.001"), Decimal("0.01"), Decimal("5")),
)


@transaction.atomic
def ensure_demo_pairs() -> list[TradingPair]:
    """Create the demo pairs that do not exist yet; existing pairs are left as operators set them."""
    pairs = []
    for spec in DEMO_PAIRS:
        pair, _ = TradingPair.objects.get_or_create(
            symbol=spec.base_asset + spec.quote_asset,
            defaults=spec._asdict(),
        )
        pairs.append(pair)
    return pairs


def pair_by_symbol(symbol: str) -> TradingPair | None:
    """The pair called `symbol` (any case), from the process's cache; shared by every request of the process,
    so read it, never change it."""
    return pairs_cache.get(symbol.upper())
