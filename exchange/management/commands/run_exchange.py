"""`manage.py run_exchange`: prepare the database, then run every process of the exchange until stopped."""

import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

from exchange.models import TradingPair
from exchange.pairs import ensure_demo_pairs

ADMIN_USERNAME = "admin"
DEFAULT_ADMIN_PASSWORD = "admin"
POLL_SECONDS = 0.5
STOP_TIMEOUT_SECONDS = 10


@dataclass(frozen=True)
class ChildProcess:
    """One long-running process of the exchange: a name for the logs, its command line, extra environment."""

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)


def child_processes(port: int, websocket_port: int, shards: list[int]) -> list[ChildProcess]:
    """The processes `run_exchange` supervises: the HTTP server, the websocket server, a matching worker per
    shard, celery worker and beat."""
    daphne = [sys.executable, "-m", "daphne", "--bind", "0.0.0.0", "--port", str(websocket_port)]
    manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
    celery = [sys.executable, "-m", "celery", "-A", "exchange"]
    return [
        ChildProcess("web", web_server_argv(port), {"SERVICE_NAME": "exchange-web"}),
        # Django's ASGI handler gives each HTTP request a thread of its own: no persistent connections there.
        ChildProcess("websockets", [*daphne, "exchange.asgi:application"],
                     {"SERVICE_NAME": "exchange-websockets", "DB_CONN_MAX_AGE": "0"}),
        *(ChildProcess(f"matching-worker-{shard}", [*manage, "run_matching_worker", "--shard", str(shard)],
                       {"SERVICE_NAME": "matching-worker"}) for shard in shards),
        ChildProcess("celery-worker", [*celery, "worker", "--loglevel", "INFO", "--concurrency", "1"],
                     {"SERVICE_NAME": "celery-worker"}),
        ChildProcess("celery-beat", [*celery, "beat", "--loglevel", "INFO"], {"SERVICE_NAME": "celery-beat"}),
    ]


def web_server_argv(port: int) -> list[str]:
    """The HTTP server: Granian running the WSGI application, chosen by measurement (docs/architecture.md,
    "Serving"): its HTTP handling is Rust, 18% less CPU per placement than gunicorn's threaded workers, and
    each of its threads keeps its PostgreSQL connection between requests. WEB_PROCESSES defaults to the core
    count; WEB_THREADS (8) bounds the requests a process runs at once, `?wait=` ones included."""
    return [sys.executable, "-m", "granian", "--interface", "wsgi", "--host", "0.0.0.0", "--port", str(port),
            "--workers", os.environ.get("WEB_PROCESSES") or str(os.cpu_count() or 2),
            "--blocking-threads", os.environ.get("WEB_THREADS") or "8", "--no-ws",
            "exchange.wsgi:application"]


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


class Supervisor:
    """Starts child processes, stops them all when one dies or a stop signal arrives."""

    def __init__(self, children: list[ChildProcess], write) -> None:
        self.children = children
        self.write = write
        self.running: dict[str, subprocess.Popen] = {}
        self.stop_requested = threading.Event()

    def run(self) -> int:
        """Run until SIGINT/SIGTERM (exit 0) or until a child exits on its own (exit 1)."""
        signal.signal(signal.SIGINT, self.request_stop)
        signal.signal(signal.SIGTERM, self.request_stop)
        try:
            for child in self.children:
                self.start(child)
            return self.wait()
        finally:
            self.stop_all()

    def request_stop(self, signum: int, frame: object) -> None:
        self.stop_requested.set()

    def start(self, child: ChildProcess) -> None:
        # A session of its own: a terminal's Ctrl-C reaches only this supervisor, which stops the children
        # in order instead of every process receiving SIGINT at once.
        process = subprocess.Popen(child.argv, env={**os.environ, **child.env}, start_new_session=True)
        self.running[child.name] = process
        self.write(f"started {child.name} (pid {process.pid}): {' '.join(child.argv)}")

    def wait(self) -> int:
        while not self.stop_requested.wait(POLL_SECONDS):
            for name, process in self.running.items():
                if process.poll() is not None:
                    self.write(f"{name} exited with code {process.returncode}; stopping the exchange")
                    return 1
        self.write("stop requested; stopping the exchange")
        return 0

    def stop_all(self) -> None:
        """SIGTERM every child's process group, then SIGKILL whatever has not exited in time."""
        for process in self.running.values():
            signal_group(process, signal.SIGTERM)
        for name, process in self.running.items():
            try:
                process.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.write(f"{name} did not stop in {STOP_TIMEOUT_SECONDS}s; killing it")
                signal_group(process, signal.SIGKILL)
                process.wait()
            self.write(f"{name} stopped")


def signal_group(process: subprocess.Popen, signum: int) -> None:
    """Signal the child and anything it started (its own session, so its own process group)."""
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        pass  # already gone: nothing left to stop


class Command(BaseCommand):
    help = "Migrate, create the demo pairs and the admin user, then serve the exchange on $PORT (8080)."

    def handle(self, *args, **options) -> None:
        call_command("migrate", interactive=False, verbosity=1)
        ensure_demo_pairs()
        self.ensure_admin()
        port = int(os.environ.get("PORT") or 8080)
        websocket_port = int(os.environ.get("WEBSOCKET_PORT") or port + 1)
        self.stdout.write(f"exchange on http://localhost:{port}/ - admin /backoffice/, API docs /api/docs/;"
                          f" websockets on ws://localhost:{websocket_port}/ws/")
        exit_code = Supervisor(child_processes(port, websocket_port, shards_in_use()), self.stdout.write).run()
        if exit_code:
            sys.exit(exit_code)

    def ensure_admin(self) -> None:
        password = os.environ.get("EXCHANGE_ADMIN_PASSWORD") or DEFAULT_ADMIN_PASSWORD
        if not ensure_admin_user(password):
            return
        self.stdout.write(f"created staff superuser {ADMIN_USERNAME!r}")
        if password == DEFAULT_ADMIN_PASSWORD:
            self.stderr.write(
                f"WARNING: {ADMIN_USERNAME!r} has the default password {DEFAULT_ADMIN_PASSWORD!r}; "
                "set EXCHANGE_ADMIN_PASSWORD before exposing this server"
            )
