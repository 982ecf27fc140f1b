"""What a start needs once, before any process of the exchange serves: production's safety checks, the schema
migrated, the demo pairs (on request) and the staff user `admin`. `run_exchange` does it before it supervises;
a deployment runs it as its one-off Job (`prepare_exchange`)."""

import os
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from exchange.serving.production import refuse_unsafe_production
from exchange.trading.pairs import ensure_demo_pairs

ADMIN_USERNAME = "admin"
DEFAULT_ADMIN_PASSWORD = "admin"
# The klines are binned by date_bin(), which PostgreSQL has since 14 (the worker publishes them with every batch).
MIN_POSTGRES_VERSION = 140000


def prepare(write: Callable[[str], None], warn: Callable[[str], None], demo_pairs: bool) -> None:
    """Production's safety checks, the schema migrated, the demo pairs (on request), the staff user `admin`
    (EXCHANGE_ADMIN_PASSWORD; production refuses the default). Reports through `write`, warns through `warn`; a
    refusal is a `CommandError` (this runs from the commands that start the exchange)."""
    refuse_unsafe_production()
    refuse_unsupported_postgres(postgres_version())
    call_command("migrate", interactive=False, verbosity=1)
    if demo_pairs:
        ensure_demo_pairs()
    password = os.environ.get("EXCHANGE_ADMIN_PASSWORD") or DEFAULT_ADMIN_PASSWORD
    if settings.PRODUCTION:
        refuse_default_admin_password(password)
    if not ensure_admin_user(password):
        return
    write(f"created staff superuser {ADMIN_USERNAME!r}")
    if password == DEFAULT_ADMIN_PASSWORD:
        warn(f"WARNING: {ADMIN_USERNAME!r} has the default password {DEFAULT_ADMIN_PASSWORD!r}; "
                             "set EXCHANGE_ADMIN_PASSWORD before exposing this server")


def postgres_version() -> int:
    """The database server's `server_version_num` (e.g. 150019 for 15.19)."""
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version_num")
        return int(cursor.fetchone()[0])


def refuse_unsupported_postgres(server_version: int) -> None:
    """A server older than MIN_POSTGRES_VERSION (`server_version_num`, e.g. 130010 for 13.10) is refused at once,
    before its first batch fails on a function it lacks."""
    if server_version < MIN_POSTGRES_VERSION:
        raise CommandError(f"PostgreSQL {server_version // 10000}.{server_version % 10000} is too old: the exchange"
                           f" needs PostgreSQL {MIN_POSTGRES_VERSION // 10000} or newer (date_bin, for the klines)")


def refuse_default_admin_password(password: str) -> None:
    """Production starts neither with EXCHANGE_ADMIN_PASSWORD left at its default nor with an `admin` user whose
    password is still the default."""
    admin = get_user_model().objects.filter(username=ADMIN_USERNAME).first()
    if password == DEFAULT_ADMIN_PASSWORD and admin is None:
        raise CommandError("TRADING_ENV=production: set EXCHANGE_ADMIN_PASSWORD; the default password is refused")
    if admin is not None and admin.check_password(DEFAULT_ADMIN_PASSWORD):
        raise CommandError(f"TRADING_ENV=production: the user {ADMIN_USERNAME!r} still has the default password;"
                           " change it (manage.py changepassword admin)")


def ensure_admin_user(password: str) -> bool:
    """Create the staff superuser `admin` unless it exists; True when it was created."""
    users = get_user_model().objects
    if users.filter(username=ADMIN_USERNAME).exists():
        return False
    users.create_superuser(username=ADMIN_USERNAME, email="", password=password)
    return True
