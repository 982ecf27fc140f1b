"""Trading pairs: the demo pairs and the invariants the database enforces."""

from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from exchange.models import TradingPair
from exchange.trading.pairs import ensure_demo_pairs

VALID_PAIR = {
    "symbol": "XRPUSDT",
    "base_asset": "XRP",
    "quote_asset": "USDT",
    "tick_size": Decimal("0.0001"),
    "lot_size": Decimal("0.1"),
    "min_notional": Decimal("5"),
}


@pytest.mark.django_db
def test_ensure_demo_pairs_creates_the_four_pairs_once():
    ensure_demo_pairs()
    ensure_demo_pairs()

    symbols = list(TradingPair.objects.values_list("symbol", flat=True))
    assert symbols == ["ADAUSDT", "BTCUSDT", "DOTUSDT", "ETHUSDT"]


@pytest.mark.django_db
def test_ensure_demo_pairs_keeps_an_operator_change():
    ensure_demo_pairs()
    TradingPair.objects.filter(symbol="BTCUSDT").update(status=TradingPair.Status.HALTED)

    ensure_demo_pairs()

    assert TradingPair.objects.get(symbol="BTCUSDT").status == TradingPair.Status.HALTED


@pytest.mark.django_db
def test_a_valid_pair_is_stored():
    TradingPair.objects.create(**VALID_PAIR)

    assert TradingPair.objects.get(symbol="XRPUSDT").status == TradingPair.Status.TRADING


@pytest.mark.django_db
@pytest.mark.parametrize(
    "override",
    [
        {"tick_size": Decimal("0")},
        {"tick_size": Decimal("-0.01")},
        {"lot_size": Decimal("0")},
        {"min_notional": Decimal("-1")},
        {"symbol": "xrpusdt", "base_asset": "xrp", "quote_asset": "usdt"},
        {"symbol": "XRPBTC"},
    ],
    ids=["zero-tick", "negative-tick", "zero-lot", "negative-min-notional", "lowercase", "symbol-mismatch"],
)
def test_the_database_rejects_an_invalid_pair(override):
    with pytest.raises(IntegrityError), transaction.atomic():
        TradingPair.objects.create(**{**VALID_PAIR, **override})


def test_clean_uppercases_names_typed_in_lowercase():
    pair = TradingPair(**{**VALID_PAIR, "symbol": "xrpusdt", "base_asset": "xrp", "quote_asset": "usdt"})

    pair.clean()

    assert (pair.symbol, pair.base_asset, pair.quote_asset) == ("XRPUSDT", "XRP", "USDT")
