"""The `Operators` group: what a staff user steering migrations needs in the back office. It may view every
trading and control-plane table (the control screens link orders, trades, divergences and audit entries there)
and change the migration settings and per-pair configs; the rest stays read-only or superuser business.
Kept in step with the models after every `migrate`."""
from django.contrib.auth.models import Group, Permission

OPERATORS = "Operators"
VIEWED_APPS = ("exchange", "migrations_admin")
CHANGED = ("change_migrationsettings", "add_migrationsettings", "change_pairmigrationconfig",
           "add_pairmigrationconfig", "change_tradingpair", "add_tradingpair")


def ensure_operators_group(**kwargs) -> None:
    group, _ = Group.objects.get_or_create(name=OPERATORS)
    wanted = Permission.objects.filter(content_type__app_label__in=VIEWED_APPS, codename__startswith="view_") | \
        Permission.objects.filter(content_type__app_label__in=VIEWED_APPS, codename__in=CHANGED)
    group.permissions.add(*wanted)
