"""The REST trading API: thin views that check the shape of a request and hand it to one service call.

Orders (`/api/orders/`) need a token or a session and only ever show the user's own orders; the pairs
(`/api/pairs/`) are public, and so is their market data (`exchange/market/views.py`, on the same paths).
"""

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, status, viewsets
from rest_framework.decorators import action
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import JSONParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from exchange.api.schema import ERROR
from exchange.api.serializers import ErrorSerializer, represented, validated
from exchange.models import Order, TradingPair
from exchange.trading import orders
from exchange.trading.pairs import pair_by_symbol
from exchange.trading.serializers import (
    CLIENT_ORDER_ID,
    OrderBatchSerializer,
    OrderFilterSerializer,
    OrderPlacementSerializer,
    OrderReduceSerializer,
    OrderSerializer,
    TradingPairSerializer,
    WaitQuerySerializer,
)

PLACED_BEFORE = OpenApiResponse(OrderSerializer, description="Placed before: its `client_order_id` was used by an"
                                " earlier placement, whose order this is; nothing new was placed.")
PLACED_BEFORE_BATCH = OpenApiResponse(OrderSerializer(many=True), description="Every order was placed before (their"
                                      " `client_order_id`s were used): the earlier orders, nothing new placed.")
UNAVAILABLE = OpenApiResponse(ErrorSerializer, description="`pair_unavailable`: the pair's matching engine is not"
                              " serving; try again after the `Retry-After` seconds.")

CHANGE_RESPONSES = {
    200: OpenApiResponse(OrderSerializer, description="Done: the order was still pending and is changed."),
    202: OpenApiResponse(OrderSerializer, description="Queued: the matching worker will apply it."),
    400: ERROR, 404: ERROR, 409: ERROR,
}


class OrderPagination(PageNumberPagination):
    """Pages of 50 orders; `?page_size=` up to 500 (more is cut to 500; something else than a whole number
    from 1 is an error, where DRF would quietly use the default)."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not raw.isascii() or not raw.isdigit() or int(raw) < 1:
            raise exceptions.ValidationError({self.page_size_query_param: ["A whole number from 1 to 500."]})
        return min(int(raw), self.max_page_size)


@extend_schema_view(
    list=extend_schema(summary="My orders, newest first", parameters=[OrderFilterSerializer],
                       responses={200: OrderSerializer(many=True), 400: ERROR}),
    retrieve=extend_schema(summary="One of my orders", responses={200: OrderSerializer, 404: ERROR}),
)
class OrderViewSet(viewsets.GenericViewSet):
    """Place, list, read, cancel and reduce the user's own orders."""

    serializer_class = OrderSerializer
    pagination_class = OrderPagination
    parser_classes = [JSONParser]
    lookup_value_regex = r"\d+"

    def get_queryset(self) -> QuerySet[Order]:
        if getattr(self, "swagger_fake_view", False):
            return Order.objects.none()
        return Order.objects.filter(owner=self.request.user).select_related("pair").order_by("-id")

    def list(self, request: Request) -> Response:
        filters = validated(OrderFilterSerializer, request.query_params)
        queryset = self.get_queryset()
        if "pair" in filters:
            queryset = queryset.filter(pair__symbol=filters["pair"].upper())
        if "status" in filters:
            queryset = queryset.filter(status=filters["status"])
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(represented(OrderSerializer, page))

    def retrieve(self, request: Request, pk: str) -> Response:
        order = self.get_queryset().filter(id=pk).first()
        if order is None:
            raise orders.OrderNotFound(int(pk))
        return Response(_order_data(order))

    @extend_schema(summary="Place an order", request=OrderPlacementSerializer, parameters=[WaitQuerySerializer],
                   responses={201: OrderSerializer, 200: PLACED_BEFORE, 400: ERROR, 409: ERROR, 503: UNAVAILABLE})
    def create(self, request: Request) -> Response:
        wait = WaitQuerySerializer.seconds(validated(WaitQuerySerializer, request.query_params))
        new_order = OrderPlacementSerializer.new_order(validated(OrderPlacementSerializer, request.data))
        order, new = orders.place_order(request.user, new_order, wait_seconds=wait)
        return Response(_order_data(order), status=status.HTTP_201_CREATED if new else status.HTTP_200_OK)

    @extend_schema(summary="Place up to 100 orders, all or nothing", request=OrderBatchSerializer,
                   parameters=[WaitQuerySerializer],
                   responses={201: OrderSerializer(many=True), 200: PLACED_BEFORE_BATCH, 400: ERROR, 409: ERROR,
                              503: UNAVAILABLE})
    @action(detail=False, methods=["post"], pagination_class=None)
    def batch(self, request: Request) -> Response:
        wait = WaitQuerySerializer.seconds(validated(WaitQuerySerializer, request.query_params))
        new_orders = OrderBatchSerializer.new_orders(validated(OrderBatchSerializer, request.data))
        placed, new = orders.place_orders(request.user, new_orders, wait_seconds=wait)
        return Response(represented(OrderSerializer, placed),
                        status=status.HTTP_201_CREATED if new else status.HTTP_200_OK)

    @extend_schema(summary="One of my orders, by my client order id", responses={200: OrderSerializer, 404: ERROR})
    @action(detail=False, methods=["get"], url_path=rf"by-client-id/(?P<client_order_id>{CLIENT_ORDER_ID})")
    def by_client_id(self, request: Request, client_order_id: str) -> Response:
        return Response(_order_data(orders.order_by_client_id(request.user, client_order_id)))

    @extend_schema(summary="Cancel an order by my client order id", request=None, responses=CHANGE_RESPONSES)
    @action(detail=False, methods=["post"], url_path=rf"by-client-id/(?P<client_order_id>{CLIENT_ORDER_ID})/cancel")
    def cancel_by_client_id(self, request: Request, client_order_id: str) -> Response:
        order = orders.order_by_client_id(request.user, client_order_id)
        order, done = orders.request_cancel(request.user, order.id)
        return _change_response(order, done)

    @extend_schema(summary="Cancel an order", request=None, responses=CHANGE_RESPONSES)
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        order, done = orders.request_cancel(request.user, int(pk))
        return _change_response(order, done)

    @extend_schema(summary="Lower an order's remaining quantity", request=OrderReduceSerializer,
                   responses=CHANGE_RESPONSES)
    @action(detail=True, methods=["post"])
    def reduce(self, request: Request, pk: str) -> Response:
        quantity = validated(OrderReduceSerializer, request.data)["quantity"]
        order, done = orders.request_reduce(request.user, int(pk), quantity)
        return _change_response(order, done)


class PairLookup:
    """The public `pairs/<symbol>/` lookup of a view set: the pair from the process's cache, any case; 404
    `pair_not_found` for an unknown symbol."""

    queryset = TradingPair.objects.all()
    permission_classes = [AllowAny]
    lookup_field = "symbol"
    lookup_value_regex = r"[A-Za-z0-9]+"
    kwargs: dict

    def get_object(self) -> TradingPair:
        symbol = self.kwargs["symbol"].upper()
        pair = pair_by_symbol(symbol)
        if pair is None:
            raise exceptions.NotFound(f"unknown pair {symbol!r}", code="pair_not_found")
        return pair


@extend_schema_view(
    list=extend_schema(summary="Trading pairs"),
    retrieve=extend_schema(summary="One trading pair", responses={200: TradingPairSerializer, 404: ERROR}),
)
class TradingPairViewSet(PairLookup, viewsets.ReadOnlyModelViewSet):
    """Public: the pairs, their grids and their market data."""

    serializer_class = TradingPairSerializer


def _order_data(order: Order) -> dict:
    return represented(OrderSerializer, [order])[0]


def _change_response(order: Order, done: bool) -> Response:
    return Response(_order_data(order), status=status.HTTP_200_OK if done else status.HTTP_202_ACCEPTED)
