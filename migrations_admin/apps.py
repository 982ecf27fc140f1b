"""App configuration of the migration control plane."""

from django.apps import AppConfig
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from migrations_admin.config import PRESET_NAMES


class MigrationsAdminConfig(AppConfig):
    """Operators move pairs from the legacy book to the adaptive book through this app."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "migrations_admin"
    verbose_name = "Engine migrations"

    def ready(self) -> None:
        """Refuses to start with a MIGRATION_PRESET that names no preset: every process checks it once. Keeps
        the `Operators` group's permissions in step with the models after each migrate."""
        from django.db.models.signals import post_migrate

        from migrations_admin.operators import ensure_operators_group

        post_migrate.connect(ensure_operators_group, sender=self, dispatch_uid="migrations_admin.operators")
        if settings.MIGRATION_PRESET not in PRESET_NAMES:
            raise ImproperlyConfigured(
                f"MIGRATION_PRESET={settings.MIGRATION_PRESET!r}; choose one of {', '.join(PRESET_NAMES)}")
