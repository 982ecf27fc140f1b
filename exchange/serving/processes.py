"""The processes of the exchange and their command lines: what `run_exchange` supervises on one machine, and what
each container of a deployment runs alone (`serve_web`, `serve_websockets`, a worker per shard, Celery)."""

import os
import re
import socket
import sys
from collections.abc import Callable

from django.conf import settings
from django.core.management.base import CommandError

from exchange.models import TradingPair
from exchange.serving.preparation import prepare
from exchange.serving.supervisor import ChildProcess, Supervisor, refuse_if_alive

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


def web_port() -> int:
    return int(os.environ.get("PORT") or 8080)


def websocket_port() -> int:
    return int(os.environ.get("WEBSOCKET_PORT") or web_port() + 1)


def shard_of_this_host() -> int:
    """The shard of a worker's pod: the ordinal Kubernetes gives a StatefulSet's pod ends its host name, `$HOSTNAME`
    first. `CommandError` when the name has none (the worker's and its probe's `--shard-from-hostname`)."""
    return shard_of_host(os.environ.get("HOSTNAME") or socket.gethostname())


def shard_of_host(hostname: str) -> int:
    """3 for `matching-worker-3`."""
    match = re.search(r"-(\d+)$", hostname)
    if match is None:
        raise CommandError(f"--shard-from-hostname: the host name {hostname!r} does not end in -<number>")
    return int(match[1])


def run_exchange(write: Callable[[str], None], warn: Callable[[str], None]) -> int:
    """Prepares the database, then runs every process of the exchange until stopped; returns the exit status.
    Raises `AlreadyRunning` when an exchange started from this checkout still runs."""
    pid_file = settings.VAR_DIR / "run_exchange.pid"
    refuse_if_alive(pid_file)
    prepare(write, warn, demo_pairs=True)
    port, ws_port = web_port(), websocket_port()
    supervisor = Supervisor(child_processes(port, ws_port, shards_in_use()), write, pid_file)
    write(f"exchange on http://localhost:{port}/ - admin /backoffice/, API docs /api/docs/;"
          f" websockets on ws://localhost:{ws_port}/ws/")
    return supervisor.run()
