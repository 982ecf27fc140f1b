"""The effective migration configuration of a pair: the environment's preset (MIGRATION_PRESET), the admin's
migration settings on top, then the pair's own config if it has one."""

from django.conf import settings

from exchange.models import TradingPair
from migrations_admin.config import ConfigBuilder, ConfigError, MigrationConfig, TradingConfiguration
from migrations_admin.errors import MigrationError
from migrations_admin.models import MigrationSettings, PairMigrationConfig


def trading_configuration() -> TradingConfiguration:
    """The whole configuration as it stands in the environment and the database."""
    try:
        return _trading_configuration()
    except ConfigError as error:
        # Saved through the admin's validation, but a later change of MIGRATION_PRESET can still break it.
        raise MigrationError(f"the stored migration configuration is invalid: {error}",
                             code="invalid_configuration") from error


def _trading_configuration() -> TradingConfiguration:
    stored = MigrationSettings.load()
    default = stored.default_config()
    builder = (ConfigBuilder()
               .enable_adaptive_order_books(settings.ADAPTIVE_ORDER_BOOKS_ENABLED
                                            and stored.adaptive_order_books_enabled)
               .with_migration_config(default))
    for pair_config in PairMigrationConfig.objects.select_related("pair"):
        builder.with_pair_specific_config(pair_config.pair.symbol, pair_config.config_on(default))
    return builder.build()


def effective_config(pair: TradingPair | str) -> MigrationConfig:
    """The MigrationConfig that governs `pair` now."""
    symbol = pair.symbol if isinstance(pair, TradingPair) else pair
    return trading_configuration().for_pair(symbol)


def migrations_enabled() -> bool:
    """False when the admin's settings or ADAPTIVE_ORDER_BOOKS_ENABLED=false switch adaptive books off."""
    return trading_configuration().adaptive_order_books_enabled
