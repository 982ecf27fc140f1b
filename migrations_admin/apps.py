"""App configuration of the migration control plane."""

from django.apps import AppConfig


class MigrationsAdminConfig(AppConfig):
    """Operators move pairs from the legacy book to the adaptive book through this app."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "migrations_admin"
    verbose_name = "Engine migrations"
