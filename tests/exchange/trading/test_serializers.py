"""The serializers' direct paths (a plainly written order read directly, an order represented directly) give
exactly what DRF's generic field-by-field way gives, on generated inputs."""
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st
from rest_framework import serializers

from exchange.api.serializers import StrictSerializer
from exchange.models import Order, TradingPair
from exchange.trading.serializers import OrderPlacementSerializer, OrderSerializer

AMOUNT_TEXT = st.one_of(
    st.from_regex(r"[0-9]{1,22}(\.[0-9]{0,20})?", fullmatch=True),
    st.sampled_from(["0", "0.0", "-1", "1e3", " 1.5", "1.5 ", "١٢", "１", "NaN", "", "+2", ".5", "5.", "0" * 25 + "1",
                     "9" * 20, "9" * 21, "1." + "1" * 18, "1." + "1" * 19, "9" * 20 + "." + "9" * 18]),
    st.decimals(allow_nan=False, allow_infinity=False, places=6).map(str),
)
CHOICE = st.one_of(st.sampled_from(["buy", "sell", "limit", "market", "gtc", "ioc", "fok", "post_only",
                                    "expire_taker", "expire_maker", "expire_both", "none", "BUY", ""]),
                   st.integers(), st.none())
MESSY_PLACEMENTS = st.fixed_dictionaries(
    {"pair": st.one_of(st.sampled_from(["BTCUSDT", "btcusdt", " BTCUSDT", "A" * 21, "", "BTC-USDT"]), st.integers()),
     "quantity": st.one_of(AMOUNT_TEXT, st.integers(), st.floats(allow_nan=False), st.none())},
    optional={"side": CHOICE, "type": CHOICE, "time_in_force": CHOICE, "self_trade": CHOICE,
              "price": st.one_of(AMOUNT_TEXT, st.none(), st.integers()), "extra": st.integers(),
              "client_order_id": st.one_of(st.text(max_size=40), st.integers(), st.none())},
)
# Mostly well-formed but for the amounts, so the direct way is taken often and its edges are tried.
NEARLY_PLAIN_PLACEMENTS = st.fixed_dictionaries(
    {"pair": st.sampled_from(["BTCUSDT", "ethusdt"]), "side": st.sampled_from(["buy", "sell"]),
     "quantity": AMOUNT_TEXT},
    optional={"type": st.sampled_from(["limit", "market"]), "time_in_force": st.sampled_from(["gtc", "ioc", "fok"]),
              "self_trade": st.sampled_from(["none", "expire_both"]), "price": st.one_of(AMOUNT_TEXT, st.none()),
              "client_order_id": st.one_of(st.from_regex(r"[A-Za-z0-9._:-]{1,36}", fullmatch=True),
                                           st.sampled_from(["", " a", "a" * 37, "ordre-é", "a/b"]))},
)
PLACEMENTS = st.one_of(MESSY_PLACEMENTS, NEARLY_PLAIN_PLACEMENTS)


def generic_validation(serializer: OrderPlacementSerializer, data: dict) -> dict | None:
    try:
        return dict(super(OrderPlacementSerializer, serializer).to_internal_value(data))
    except serializers.ValidationError:
        return None


@settings(max_examples=600, deadline=None)
@given(PLACEMENTS)
def test_an_order_read_directly_is_read_as_the_generic_validation_reads_it(data):
    serializer = OrderPlacementSerializer()

    direct = serializer._read_plainly(data)

    if direct is not None:
        assert direct == generic_validation(serializer, data)


def test_plain_orders_take_the_direct_way():
    plain = {"pair": "BTCUSDT", "side": "buy", "price": "50000.01", "quantity": "0.5"}
    assert OrderPlacementSerializer()._read_plainly(plain) is not None
    assert isinstance(OrderPlacementSerializer(), StrictSerializer)


DECIMALS = st.decimals(min_value=Decimal("0.000000000000000001"), max_value=Decimal("99999999999999999999"),
                       allow_nan=False, allow_infinity=False, places=18)
MOMENTS = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2040, 1, 1)).map(
    lambda moment: moment.replace(tzinfo=UTC))


@settings(max_examples=300, deadline=None)
@given(price=st.one_of(st.none(), DECIMALS), quantity=DECIMALS, filled_share=st.integers(0, 4),
       average=st.one_of(st.none(), DECIMALS), created=MOMENTS, later=st.integers(0, 10**7),
       status=st.sampled_from(Order.Status.values), reason=st.sampled_from(["", "self_trade", "ioc"]))
def test_an_order_represented_directly_is_what_the_generic_representation_gives(
        price, quantity, filled_share, average, created, later, status, reason):
    pair = TradingPair(id=1, symbol="BTCUSDT", tick_size=Decimal("0.01"), lot_size=Decimal("0.00001"))
    order = Order(id=7, pair=pair, side="sell", order_type="market" if price is None else "limit", price=price,
                  quantity=quantity, filled_quantity=quantity * filled_share / 4, average_fill_price=average,
                  status=status, reason=reason, created_at=created,
                  updated_at=created + timedelta(microseconds=later))
    serializer = OrderSerializer()

    assert serializer.to_representation(order) == dict(serializer.generic_representation(order))
