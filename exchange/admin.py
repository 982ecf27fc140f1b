"""Django admin screens of the exchange, at /backoffice/."""

from django.contrib import admin

from exchange.models import TradingPair


@admin.register(TradingPair)
class TradingPairAdmin(admin.ModelAdmin):
    """Operators list, halt and edit trading pairs here."""

    list_display = ["symbol", "status", "shard", "tick_size", "lot_size", "min_notional"]
    list_filter = ["status", "shard"]
    search_fields = ["symbol", "base_asset", "quote_asset"]
    readonly_fields = ["created", "updated"]
