"""Admin screens of the migration control plane, at /backoffice/migrations_admin/.

The global settings and per-pair configs are editable (validated by `MigrationConfig` through the models'
`clean()`); plans and their events are read-only: only `migrations_admin.actions` changes them, so that every
change reaches the worker as an EngineCommand and is audited.
"""

from django.contrib import admin
from django.http import HttpRequest

from exchange.admin import ReadOnlyAdmin
from migrations_admin.models import MigrationEvent, MigrationPlan, MigrationSettings, PairMigrationConfig


@admin.register(MigrationSettings)
class MigrationSettingsAdmin(admin.ModelAdmin):
    """The one row of global settings: the master switch, the default preset and its overrides."""

    list_display = ["__str__", "adaptive_order_books_enabled", "default_preset", "updated_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return not MigrationSettings.objects.exists()

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(PairMigrationConfig)
class PairMigrationConfigAdmin(admin.ModelAdmin):
    """A pair's own preset and overrides; it applies to the pair's next plan."""

    list_display = ["pair", "preset", "overrides", "updated_at"]
    list_select_related = ["pair"]


class MigrationEventInline(admin.TabularInline):
    model = MigrationEvent
    fields = readonly_fields = ("created_at", "kind", "actor", "from_percentage", "to_percentage", "reason", "figures")
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(MigrationPlan)
class MigrationPlanAdmin(ReadOnlyAdmin):
    """Each pair's plans, with their full history."""

    list_display = ["id", "pair", "state", "current_percentage", "target_percentage", "hold_reason",
                    "last_step_at", "next_step_at", "actor"]
    list_filter = ["state", "pair"]
    list_select_related = ["pair"]
    inlines = [MigrationEventInline]


@admin.register(MigrationEvent)
class MigrationEventAdmin(ReadOnlyAdmin):
    """Every step and decision of every plan."""

    list_display = ["created_at", "plan", "kind", "actor", "from_percentage", "to_percentage", "reason"]
    list_filter = ["kind"]
    list_select_related = ["plan__pair"]
    search_fields = ["actor", "reason"]
