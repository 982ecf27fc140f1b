"""Django admin screens of the exchange, at /backoffice/.

Orders, requests, trades, the audit log, engine states and heartbeats are shown read-only: the API's
services and the matching worker are their only writers, so a hand edit here could never reach the
in-memory books and would only make the database disagree with them.
"""

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from exchange.models import (
    AuditLog,
    Divergence,
    EngineState,
    HealthSample,
    Order,
    OrderRequest,
    Trade,
    TradingPair,
    WorkerHeartbeat,
)


def amounts(*fields: tuple[str, str, str]):
    """Admin columns that show amounts in their pair's precision and asset: (field, kind, title) each, kind
    `price` or `quantity`."""
    def column(field: str, kind: str, title: str):
        def show(self, row) -> str:
            value = getattr(row, field)
            return getattr(row.pair, f"{kind}_text")(value) if value is not None else "–"
        return admin.display(description=title, ordering=field)(show)
    return [column(*spec) for spec in fields]


@admin.register(TradingPair)
class TradingPairAdmin(admin.ModelAdmin):
    """Operators list, add, halt and edit trading pairs here.

    A pair's grid and shard are fixed once it exists. Its running worker holds the book in ticks and lots of
    the grid it loaded, and converts them back with the grid the table holds: a changed tick or lot size would
    silently rescale every fill written after it. A changed shard would have two workers serve one book.
    """

    list_display = ["symbol", "status", "shard", "tick_size", "lot_size", "min_notional"]
    list_filter = ["status", "shard"]
    search_fields = ["symbol", "base_asset", "quote_asset"]
    FIXED_ONCE_CREATED = ["symbol", "base_asset", "quote_asset", "tick_size", "lot_size", "shard"]

    def get_readonly_fields(self, request: HttpRequest, obj: TradingPair | None = None) -> list[str]:
        return ["created", "updated", *(self.FIXED_ONCE_CREATED if obj is not None else [])]


class ReadOnlyAdmin(admin.ModelAdmin):
    """A screen to look, never to add, change or delete."""

    # Counting every row of a large table on each page is slow; "show all" counts are not needed here.
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class RestingFilter(admin.SimpleListFilter):
    """The question an operator asks most: what is still in the book (a user's open orders with a search)."""

    title = "in the book"
    parameter_name = "resting"

    def lookups(self, request, model_admin):
        return [("yes", "open or partially filled"), ("no", "finished or pending")]

    def queryset(self, request, queryset: QuerySet) -> QuerySet:
        if self.value() == "yes":
            return queryset.filter(status__in=Order.RESTING_STATUSES)
        if self.value() == "no":
            return queryset.exclude(status__in=Order.RESTING_STATUSES)
        return queryset


@admin.register(Order)
class OrderAdmin(ReadOnlyAdmin):
    """Every user's orders, newest first; search by user, order id or client order id."""

    show_price, show_quantity, show_filled = amounts(("price", "price", "price"), ("quantity", "quantity", "quantity"),
                                                     ("filled_quantity", "quantity", "filled"))
    list_display = ["id", "owner", "pair", "side", "order_type", "show_price", "show_quantity", "show_filled",
                    "status", "reason", "created_at"]
    list_filter = [RestingFilter, "pair", "status", "side", "order_type"]
    list_select_related = ["owner", "pair"]
    search_fields = ["=id", "owner__username", "=client_order_id"]
    date_hierarchy = "created_at"


@admin.register(OrderRequest)
class OrderRequestAdmin(ReadOnlyAdmin):
    """Cancel and reduce requests waiting for, or processed by, the matching worker."""

    list_display = ["id", "order_id", "pair", "kind", "quantity", "status", "reason", "created_at",
                    "processed_at"]
    list_filter = ["pair", "kind", "status"]
    list_select_related = ["pair"]
    search_fields = ["=order__id"]


@admin.register(Trade)
class TradeAdmin(ReadOnlyAdmin):
    """Executions, newest first; a pair's trades in a time range by the pair filter and the dates above."""

    show_price, show_quantity = amounts(("price", "price", "price"), ("quantity", "quantity", "quantity"))
    list_display = ["id", "pair", "sequence", "show_price", "show_quantity", "taker_side", "maker_order_id",
                    "taker_order_id", "executed_at"]
    list_filter = ["pair", "taker_side"]
    list_select_related = ["pair"]
    search_fields = ["=maker_order__id", "=taker_order__id"]
    date_hierarchy = "executed_at"


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyAdmin):
    """Who or what did what to which target; search by actor, target (`pair:BTCUSDT`, `order:12`) or action."""

    list_display = ["id", "created_at", "actor", "action", "target"]
    list_filter = ["action"]
    search_fields = ["actor", "target", "action"]
    date_hierarchy = "created_at"


@admin.register(Divergence)
class DivergenceAdmin(ReadOnlyAdmin):
    """Where the two books disagreed: the command and both books' events (the control screen's pair page shows
    them side by side)."""

    list_display = ["id", "pair", "kind", "engine_sequence", "created_at", "side_by_side"]
    list_filter = ["pair", "kind"]
    list_select_related = ["pair"]
    date_hierarchy = "created_at"

    @admin.display(description="both books")
    def side_by_side(self, divergence: Divergence) -> str:
        url = reverse("control-pair", args=[divergence.pair.symbol])
        return format_html('<a href="{}#divergence-{}">compare</a>', url, divergence.id)


@admin.register(HealthSample)
class HealthSampleAdmin(ReadOnlyAdmin):
    """Each book's per-minute figures, as the worker sampled them."""

    list_display = ["minute", "pair", "book", "commands", "errors", "divergences", "latency_p50_us",
                    "latency_p95_us", "latency_p99_us", "breaker_state", "breaker_trips"]
    list_filter = ["pair", "book", "breaker_state"]
    list_select_related = ["pair"]
    date_hierarchy = "minute"


@admin.register(EngineState)
class EngineStateAdmin(ReadOnlyAdmin):
    """Each pair's engine mode and the counters the worker resumes from."""

    list_display = ["pair", "mode", "percentage", "command_sequence", "trade_sequence", "last_inbox_sequence",
                    "updated_at"]
    list_filter = ["mode"]


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(ReadOnlyAdmin):
    """The last sign of life of each shard's matching worker."""

    list_display = ["shard", "hostname", "pid", "started_at", "last_seen", "batches", "commands"]
