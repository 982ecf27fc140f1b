"""The shapes of the trading API: what a request about orders may hold and how orders and pairs look.

Serializers check shape (types, choices, signs, digits, unknown fields); the rules of a pair (its grid,
its minimum notional, whether it trades) are checked by `exchange.trading.orders`.
"""

import re
from decimal import Decimal
from typing import TypeGuard

from rest_framework import serializers

from exchange.api.fields import AmountField
from exchange.api.serializers import AmountModelSerializer, StrictSerializer
from exchange.models import Order, TradingPair
from exchange.trading.orders import MAX_BATCH_SIZE, MAX_WAIT_SECONDS, NewOrder
from matching.units import amount_text

# An amount as clients usually write it, which the amount field's full validation would accept unchanged.
PLAIN_AMOUNT = re.compile(r"[0-9]{1,20}(?:\.[0-9]{1,18})?")
PLAIN_SYMBOL = re.compile(r"[A-Za-z0-9]{1,20}")
CLIENT_ORDER_ID = r"[A-Za-z0-9._:-]{1,36}"      # the characters the big exchanges allow in their client order ids
PLAIN_CLIENT_ORDER_ID = re.compile(CLIENT_ORDER_ID)


class ClientOrderIdField(serializers.RegexField):
    """A client's id of an order: a string of 1-36 of A-Z a-z 0-9 . _ : - (a number is not turned into one)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(rf"^{CLIENT_ORDER_ID}$", required=False, max_length=36, trim_whitespace=False, **kwargs)

    def to_internal_value(self, data) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class OrderPlacementSerializer(StrictSerializer):
    """One new order. `price` is required for a limit order and must be absent or null for a market one."""

    pair = serializers.CharField(max_length=20, help_text="Symbol of the pair, e.g. BTCUSDT.")
    side = serializers.ChoiceField(choices=Order.Side.choices)
    type = serializers.ChoiceField(choices=Order.Type.choices, default=Order.Type.LIMIT, source="order_type")
    time_in_force = serializers.ChoiceField(choices=Order.TimeInForce.choices, default=Order.TimeInForce.GTC)
    self_trade = serializers.ChoiceField(choices=Order.SelfTrade.choices, default=Order.SelfTrade.EXPIRE_TAKER)
    price = AmountField(default=None, allow_null=True, help_text="Limit price; absent or null for market orders.")
    quantity = AmountField(help_text="Quantity in the base asset.")
    client_order_id = ClientOrderIdField(
        help_text="Your own id of the order (1-36 of A-Z a-z 0-9 . _ : -), unique among your orders: placing again"
                  " with an id you used answers the order placed the first time (200), never a second one.")

    def to_internal_value(self, data) -> dict:
        """An order written plainly (plain symbol, known choices, amounts as plain positive decimal strings) is
        read directly: the fields' generic validation took 0.1 ms an order, a third of a batch's time. Anything
        else takes the generic way, which gives the exact error. `test_serializers.py` holds both equal."""
        plain = self._read_plainly(data)
        return plain if plain is not None else super().to_internal_value(data)

    @staticmethod
    def _read_plainly(data) -> dict | None:
        if type(data) is not dict or not data.keys() <= PLACEMENT_FIELDS:
            return None
        pair, price, quantity = data.get("pair"), data.get("price"), data.get("quantity")
        if type(pair) is not str or not PLAIN_SYMBOL.fullmatch(pair) or not _plain_positive(quantity):
            return None
        if price is not None and not _plain_positive(price):
            return None
        choices = {name: data.get(name, default) for name, default in PLACEMENT_CHOICE_DEFAULTS.items()}
        if any(type(value) is not str or value not in PLACEMENT_CHOICES[name] for name, value in choices.items()):
            return None
        read = {"pair": pair, "side": choices["side"], "order_type": choices["type"],
                "time_in_force": choices["time_in_force"], "self_trade": choices["self_trade"],
                "price": None if price is None else Decimal(price), "quantity": Decimal(quantity)}
        if "client_order_id" in data:
            client_order_id = data["client_order_id"]
            if type(client_order_id) is not str or not PLAIN_CLIENT_ORDER_ID.fullmatch(client_order_id):
                return None
            read["client_order_id"] = client_order_id
        return read

    def validate(self, attrs: dict) -> dict:
        if attrs["order_type"] == Order.Type.LIMIT and attrs["price"] is None:
            raise serializers.ValidationError({"price": ["A limit order needs a price."]})
        if attrs["order_type"] == Order.Type.MARKET and attrs["price"] is not None:
            raise serializers.ValidationError({"price": ["A market order takes no price."]})
        return attrs

    @staticmethod
    def new_order(validated: dict) -> NewOrder:
        return NewOrder(**validated)


PLACEMENT_FIELDS = frozenset(OrderPlacementSerializer._declared_fields)
PLACEMENT_CHOICE_DEFAULTS = {"side": None, "type": Order.Type.LIMIT.value, "time_in_force": Order.TimeInForce.GTC.value,
                             "self_trade": Order.SelfTrade.EXPIRE_TAKER.value}
PLACEMENT_CHOICES = {"side": set(Order.Side.values), "type": set(Order.Type.values),
                     "time_in_force": set(Order.TimeInForce.values), "self_trade": set(Order.SelfTrade.values)}


def _plain_positive(amount: object) -> TypeGuard[str]:
    return type(amount) is str and PLAIN_AMOUNT.fullmatch(amount) is not None and Decimal(amount) > 0


class OrderBatchSerializer(StrictSerializer):
    """Up to 100 new orders, placed all or nothing."""

    orders = OrderPlacementSerializer(many=True, allow_empty=False, max_length=MAX_BATCH_SIZE)

    @staticmethod
    def new_orders(validated: dict) -> list[NewOrder]:
        return [OrderPlacementSerializer.new_order(item) for item in validated["orders"]]


class OrderReduceSerializer(StrictSerializer):
    """The order's new remaining quantity: on its pair's lot grid, smaller than the current one; zero
    cancels the order."""

    quantity = AmountField(allow_zero=True, help_text="The new remaining quantity.")


class WaitQuerySerializer(serializers.Serializer):
    """`?wait=<ms>`: how long to wait for the matching worker's result before answering."""

    wait = serializers.IntegerField(
        min_value=0, max_value=int(MAX_WAIT_SECONDS * 1000), default=0,
        help_text="Milliseconds to wait for the matching worker to take the order(s) before answering.")

    @staticmethod
    def seconds(validated: dict) -> float:
        return validated["wait"] / 1000


class OrderFilterSerializer(serializers.Serializer):
    """The filters of the order list. A filter given empty (`?status=`) is an error, not "no filter": the
    schema says what a filter may be, and an empty one is not among it."""

    def to_internal_value(self, data):
        blank = sorted(name for name in self.fields if name in data and data.get(name) == "")
        if blank:
            raise serializers.ValidationError({name: ["This filter may not be blank."] for name in blank})
        return super().to_internal_value(data)

    pair = serializers.CharField(required=False, max_length=20, help_text="Only orders of this pair.")
    status = serializers.ChoiceField(choices=Order.Status.choices, required=False,
                                     help_text="Only orders in this status.")


class OrderSerializer(AmountModelSerializer):
    """An order as its owner sees it."""

    pair = serializers.CharField(source="pair.symbol", read_only=True)
    type = serializers.CharField(source="order_type", read_only=True)
    remaining_quantity = AmountField(read_only=True)

    class Meta:
        model = Order
        fields = ["id", "client_order_id", "pair", "side", "type", "time_in_force", "self_trade", "price",
                  "quantity", "filled_quantity", "remaining_quantity", "average_fill_price", "status", "reason",
                  "created_at", "updated_at"]
        read_only_fields = fields

    def to_representation(self, order: Order) -> dict:
        """The fields above, written directly: the generic representation (15 DRF fields) took 0.15 ms an
        order. `test_serializers.py` holds this equal to the generic one."""
        created_at, updated_at = self.fields["created_at"], self.fields["updated_at"]
        return {
            "id": order.id, "client_order_id": order.client_order_id, "pair": order.pair.symbol, "side": order.side,
            "type": order.order_type,
            "time_in_force": order.time_in_force, "self_trade": order.self_trade, "price": _amount(order.price),
            "quantity": _amount(order.quantity), "filled_quantity": _amount(order.filled_quantity),
            "remaining_quantity": _amount(order.remaining_quantity),
            "average_fill_price": _amount(order.average_fill_price), "status": order.status, "reason": order.reason,
            "created_at": created_at.to_representation(order.created_at),
            "updated_at": updated_at.to_representation(order.updated_at),
        }

    def generic_representation(self, order: Order) -> dict:
        """DRF's own representation of the declared fields, which `to_representation` must equal."""
        return super().to_representation(order)


def _amount(value: Decimal | None) -> str | None:
    return None if value is None else amount_text(value)



class TradingPairSerializer(AmountModelSerializer):
    """A pair and its grid."""

    class Meta:
        model = TradingPair
        fields = ["symbol", "base_asset", "quote_asset", "tick_size", "lot_size", "min_notional", "status"]
        read_only_fields = fields
