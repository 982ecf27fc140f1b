"""App configuration of the exchange (trading pairs, orders, trades)."""

from django.apps import AppConfig


class ExchangeConfig(AppConfig):
    """The trading side of the back office."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "exchange"
