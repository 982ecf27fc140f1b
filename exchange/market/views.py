"""The public market data of the REST API, on the pairs' paths (`/api/pairs/<PAIR>/depth/`, `trades/`, `ticker/`,
`klines/`): the book, the trades and the ticker as the matching worker publishes them (`exchange/market/published.py`),
the klines from the trade table."""

from datetime import timedelta

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from exchange.api.schema import ERROR
from exchange.api.serializers import validated
from exchange.market import published, tables
from exchange.market.contract import kline_json
from exchange.market.serializers import (
    DepthQuerySerializer,
    DepthSerializer,
    KlineSerializer,
    KlinesQuerySerializer,
    TickerSerializer,
    TradeSerializer,
    TradesQuerySerializer,
)
from exchange.trading.views import PairLookup

ONE_SECOND = timedelta(seconds=1)


# A pair's book, recent trades, ticker and klines. The docstring is what the API docs say of every operation on
# `/api/pairs/`, the same as `exchange.trading.views.TradingPairViewSet`'s.
class PairMarketDataViewSet(PairLookup, viewsets.GenericViewSet):
    """Public: the pairs, their grids and their market data."""

    @extend_schema(summary="Aggregated order book", parameters=[DepthQuerySerializer],
                   responses={200: DepthSerializer, 400: ERROR, 404: ERROR})
    @action(detail=True, methods=["get"])
    def depth(self, request: Request, symbol: str) -> Response:
        limit = validated(DepthQuerySerializer, request.query_params)["limit"]
        return Response(published.depth_answers.get(self.get_object(), limit))

    @extend_schema(summary="Recent trades, newest first", parameters=[TradesQuerySerializer],
                   responses={200: TradeSerializer(many=True), 400: ERROR, 404: ERROR})
    @action(detail=True, methods=["get"])
    def trades(self, request: Request, symbol: str) -> Response:
        limit = validated(TradesQuerySerializer, request.query_params)["limit"]
        return Response(published.recent_trades(self.get_object(), limit))

    @extend_schema(summary="24 h ticker (the last 24 hours, to the minute)",
                   responses={200: TickerSerializer, 404: ERROR})
    @action(detail=True, methods=["get"])
    def ticker(self, request: Request, symbol: str) -> Response:
        return Response(published.ticker(self.get_object()))

    @extend_schema(summary="Klines (candles) of the trades, oldest first", parameters=[KlinesQuerySerializer],
                   responses={200: KlineSerializer(many=True), 400: ERROR, 404: ERROR})
    @action(detail=True, methods=["get"])
    def klines(self, request: Request, symbol: str) -> Response:
        query = validated(KlinesQuerySerializer, request.query_params)
        pair, interval = self.get_object(), query["interval"]
        seconds = tables.KLINE_INTERVALS[interval]
        end = query.get("end") or timezone.now()
        rows = tables.kline_rows(pair.id, seconds, end - seconds * query["limit"] * ONE_SECOND, end)
        return Response([kline_json(row, interval) for row in rows[-query["limit"]:]])
