"""The shapes of the public market data: what a query may ask and how trades, the book, the ticker and klines
look, in the REST API and in the streams' messages alike."""
from rest_framework import serializers

from exchange.api.fields import AmountField
from exchange.api.serializers import AmountModelSerializer, limit_query_serializer
from exchange.market.tables import KLINE_INTERVALS
from exchange.models import Trade


class TradeSerializer(AmountModelSerializer):
    """A public trade: no order ids, no owners."""

    class Meta:
        model = Trade
        fields = ["sequence", "price", "quantity", "taker_side", "executed_at"]
        read_only_fields = fields


class DepthLevelSerializer(serializers.Serializer):
    """The total remaining quantity resting at one price."""

    price = AmountField()
    quantity = AmountField()


class DepthSerializer(serializers.Serializer):
    """The aggregated book: bids highest price first, asks lowest first."""

    pair = serializers.CharField()
    bids = DepthLevelSerializer(many=True)
    asks = DepthLevelSerializer(many=True)


class TickerSerializer(serializers.Serializer):
    """Figures of the last 24 hours of trades; prices are null when there was no trade."""

    pair = serializers.CharField()
    open = AmountField(allow_null=True)
    high = AmountField(allow_null=True)
    low = AmountField(allow_null=True)
    last = AmountField(allow_null=True)
    base_volume = AmountField(allow_zero=True)
    quote_volume = AmountField(allow_zero=True)
    trade_count = serializers.IntegerField()
    window_start = serializers.DateTimeField()
    window_end = serializers.DateTimeField()


class KlineSerializer(serializers.Serializer):
    """The trades of one interval (an interval without trades has no kline): open and close are its first and
    last trade's price, the volumes are summed, in the base asset and in the quote asset."""

    open_time = serializers.DateTimeField()
    interval = serializers.CharField()
    open = AmountField()
    high = AmountField()
    low = AmountField()
    close = AmountField()
    base_volume = AmountField()
    quote_volume = AmountField()
    trade_count = serializers.IntegerField()


class KlinesQuerySerializer(serializers.Serializer):
    """`?interval=1m&limit=500&end=<time>`: the newest `limit` intervals that start before `end` (by default
    now)."""

    interval = serializers.ChoiceField(choices=list(KLINE_INTERVALS), default="1m",
                                       help_text="The length of a kline (1m, 5m, 15m, 30m, 1h, 4h, 1d).")
    limit = serializers.IntegerField(min_value=1, max_value=1000, default=500,
                                     help_text="How many intervals back from `end` (default 500, at most 1000).")
    end = serializers.DateTimeField(required=False, help_text="Only trades before this time (ISO 8601).")


DepthQuerySerializer = limit_query_serializer(default=20, maximum=500)
TradesQuerySerializer = limit_query_serializer(default=50, maximum=500)
