"""Django admin screens of the exchange, at /backoffice/.

Orders, requests, trades, the audit log, engine states and heartbeats are shown read-only: the API's
services and the matching worker are their only writers, so a hand edit here could never reach the
in-memory books and would only make the database disagree with them.
"""

from django.contrib import admin
from django.http import HttpRequest

from exchange.models import AuditLog, EngineState, Order, OrderRequest, Trade, TradingPair, WorkerHeartbeat


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


@admin.register(Order)
class OrderAdmin(ReadOnlyAdmin):
    """Every user's orders, newest first."""

    list_display = ["id", "owner", "pair", "side", "order_type", "price", "quantity", "filled_quantity",
                    "status", "reason", "created_at"]
    list_filter = ["pair", "status", "side", "order_type"]
    list_select_related = ["owner", "pair"]
    search_fields = ["=id", "owner__username"]


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
    """Executions, newest first per pair."""

    list_display = ["id", "pair", "sequence", "price", "quantity", "taker_side", "maker_order_id",
                    "taker_order_id", "executed_at"]
    list_filter = ["pair", "taker_side"]
    list_select_related = ["pair"]


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyAdmin):
    """Who or what did what to which target."""

    list_display = ["created_at", "actor", "action", "target"]
    list_filter = ["action"]
    search_fields = ["actor", "target"]


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
