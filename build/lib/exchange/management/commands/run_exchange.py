"""`manage.py run_exchange`: prepare the database, then run every process of the exchange until stopped."""

import os
import sys

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from exchange.models import TradingPair
from exchange.pairs import ensure_demo_pairs
from exchange.production import refuse_unsafe_production
from exchange.supervisor import AlreadyRunning, ChildProcess, Supervisor, refuse_if_alive

ADMIN_USERNAME = "admin"
DEFAULT_ADMIN_PASSWORD = "admin"
# The stages of a stop: serving first (no new orders once the workers stop), then the workers, then the rest.
SERVING, MATCHING, TIMED_WORK = 0, 1, 2


def child_processes(port: int, websocket_port: int, shards: list[int]) -> list[ChildProcess]:
    """The processes `run_exchange` supervises: the HTTP server, the websocket server, a matching worker per
    shard, celery worker and beat."""
    manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
    celery = [sys.executable, "-m", "celery", "-A", "exchange"]
    return [
        ChildProcess("web", web_server_argv(port), {"LOG_COMPONENT": "web"}, SERVING),
        # Django's ASGI handler gives each HTTP request a thread of its own: no persistent connections there.
        ChildProcess("websockets", websocket_server_argv(websocket_port),
                     {"LOG_COMPONENT": "websockets", "DB_CONN_MAX_AGE": "0"}, SERVING),
        *(ChildProcess(f"matching-worker-{shard}", [*manage, "run_matching_worker", "--shard", str(shard)],
                       {"LOG_COMPONENT": "matching-worker"}, MATCHING) for shard in shards),
        ChildProcess("celery-worker", [*celery, "worker", "--loglevel", "INFO", "--concurrency", "1"],
                     {"LOG_COMPONENT": "celery-worker"}, TIMED_WORK),
        ChildProcess("celery-beat", [*celery, "beat", "--loglevel", "INFO"], {"LOG_COMPONENT": "celery-beat"},
                     TIMED_WORK),
    ]


def web_server_argv(port: int) -> list[str]:
    """The HTTP server: Granian running the WSGI application, chosen by measurement (docs/architecture.md,
    "Serving"): its HTTP handling is Rust, 18% less CPU per placement than gunicorn's threaded workers, and
    each of its threads keeps its PostgreSQL connection between requests. WEB_PROCESSES defaults to the core
    count; WEB_THREADS (8) bounds the requests a process runs at once, `?wait=` ones included."""
    return [sys.executable, "-m", "granian", "--interface", "wsgi", "--host", "0.0.0.0", "--port", str(port),
            "--workers", os.environ.get("WEB_PROCESSES") or str(os.cpu_count() or 2),
            "--blocking-threads", os.environ.get("WEB_THREADS") or "8", "--no-ws",
            # On SIGTERM Granian stops accepting and lets the requests in flight finish, for at most this long.
            "--workers-kill-timeout", "8", "exchange.wsgi:application"]


def websocket_server_argv(port: int) -> list[str]:
    """The websocket server: uvicorn running the Channels application with the sans-I/O `websockets` protocol on
    uvloop. Its send waits while a client's socket buffer is full, which lets a consumer tell a client that
    does not read from a busy server and drop it (daphne buffers without bound and never says).

    No per-message compression unless WEBSOCKET_COMPRESSION is on: each connection compresses with a context of
    its own, so an update sent to 100 clients was compressed 100 times, half the server's CPU (py-spy)."""
    compression = "true" if os.environ.get("WEBSOCKET_COMPRESSION", "").lower() in ("1", "true", "yes", "on") \
        else "false"
    return [sys.executable, "-m", "uvicorn", "exchange.asgi:application", "--host", "0.0.0.0", "--port", str(port),
            "--ws", "websockets-sansio", "--ws-per-message-deflate", compression, "--loop", "uvloop",
            "--lifespan", "off", "--no-access-log", "--timeout-graceful-shutdown", "8"]


def shards_in_use() -> list[int]:
    """Shard 0 and every shard a pair names: each needs its worker, or that pair's orders stay pending. A pair
    added later joins its shard's running worker at once; a pair on a new shard needs a restart of this command."""
    return sorted({0, *TradingPair.objects.values_list("shard", flat=True)})


def ensure_admin_user(password: str) -> bool:
    """Create the staff superuser `admin` unless it exists; True when it was created."""
    users = get_user_model().objects
    if users.filter(username=ADMIN_USERNAME).exists():
        return False
    users.create_superuser(username=ADMIN_USERNAME, email="", password=password)
    return True


class Command(BaseCommand):
    help = "Migrate, create the demo pairs and the admin user, then serve the exchange on $PORT (8080)."

    def handle(self, *args, **options) -> None:
        pid_file = settings.VAR_DIR / "run_exchange.pid"
        try:
            refuse_if_alive(pid_file)
        except AlreadyRunning as error:
            raise CommandError(str(error)) from None
        prepare(self, demo_pairs=True)
        port = int(os.environ.get("PORT") or 8080)
        websocket_port = int(os.environ.get("WEBSOCKET_PORT") or port + 1)
        supervisor = Supervisor(child_processes(port, websocket_port, shards_in_use()), self.stdout.write, pid_file)
        self.stdout.write(f"exchange on http://localhost:{port}/ - admin /backoffice/, API docs /api/docs/;"
                          f" websockets on ws://localhost:{websocket_port}/ws/")
        try:
            sys.exit(supervisor.run())
        except AlreadyRunning as error:
            raise CommandError(str(error)) from None



def prepare(command: BaseCommand, demo_pairs: bool) -> None:
    """What a start needs once: production's safety checks, the schema migrated, the demo pairs (on request),
    the staff user `admin` (EXCHANGE_ADMIN_PASSWORD; production refuses the default)."""
    refuse_unsafe_production()
    call_command("migrate", interactive=False, verbosity=1)
    if demo_pairs:
        ensure_demo_pairs()
    password = os.environ.get("EXCHANGE_ADMIN_PASSWORD") or DEFAULT_ADMIN_PASSWORD
    if settings.PRODUCTION:
        refuse_default_admin_password(password)
    if not ensure_admin_user(password):
        return
    command.stdout.write(f"created staff superuser {ADMIN_USERNAME!r}")
    if password == DEFAULT_ADMIN_PASSWORD:
        command.stderr.write(f"WARNING: {ADMIN_USERNAME!r} has the default password {DEFAULT_ADMIN_PASSWORD!r}; "
                             "set EXCHANGE_ADMIN_PASSWORD before exposing this server")


def refuse_default_admin_password(password: str) -> None:
    """Production starts neither with EXCHANGE_ADMIN_PASSWORD left at its default nor with an `admin` user whose
    password is still the default."""
    admin = get_user_model().objects.filter(username=ADMIN_USERNAME).first()
    if password == DEFAULT_ADMIN_PASSWORD and admin is None:
        raise CommandError("TRADING_ENV=production: set EXCHANGE_ADMIN_PASSWORD; the default password is refused")
    if admin is not None and admin.check_password(DEFAULT_ADMIN_PASSWORD):
        raise CommandError(f"TRADING_ENV=production: the user {ADMIN_USERNAME!r} still has the default password;"
                           " change it (manage.py changepassword admin)")
