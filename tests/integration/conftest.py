"""Multi-process tests: a real matching worker process against the test database."""
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from exchange.models import Order, OrderRequest, WorkerHeartbeat

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port nobody listens on now, for a server a test starts."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def service_get(port: int, path: str, **headers: str) -> tuple[int, dict[str, str], str]:
    """GET as a pod calls the web's Service (`http://trading-service:<port>/...`): plain HTTP, the Service's name as
    the host, redirects not followed. The status, the headers (lower-case names) and the body."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path, headers={"Host": f"trading-service:{port}", **headers})
        answer = connection.getresponse()
        return answer.status, {name.lower(): value for name, value in answer.getheaders()}, answer.read().decode()
    finally:
        connection.close()


def wait_for_port(port: int, process: subprocess.Popen, name: str, timeout: float = 30) -> None:
    """Until the server `process` started accepts connections on `port`; an error if it exits or takes longer."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise AssertionError(f"{name} did not start") from None
            time.sleep(0.1)


def worker_environment() -> dict:
    """The environment that points a child process at the test database (not the development one)."""
    settings = connection.settings_dict
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    env.update(DB_HOST=settings["HOST"] or "localhost", DB_PORT=str(settings["PORT"] or 5432),
               DB_NAME=settings["NAME"], DB_USER=settings["USER"] or "", DB_PASSWORD=settings["PASSWORD"] or "",
               LOG_LEVEL="warning")
    return env


class WorkerProcess:
    """Starts, kills and stops `manage.py run_matching_worker` child processes."""

    def __init__(self, shard: int = 0) -> None:
        self.shard = shard
        self.process: subprocess.Popen | None = None
        self.env: dict[str, str] = {}       # extra environment, e.g. MATCHING_ADAPTIVE_BOOK

    def start(self, *extra: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "run_matching_worker", "--shard", str(self.shard), "--heartbeat", "0.5",
             *extra], cwd=ROOT, env={**worker_environment(), **self.env})

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self, timeout: float = 20) -> int:
        """SIGTERM once the worker serves: a worker still starting up has no handler yet and would die of it."""
        self.wait_ready(timeout)
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def wait_ready(self, timeout: float = 20) -> None:
        """Waits for this process's first heartbeat, written once its books are loaded and it serves."""
        wait_until(lambda: WorkerHeartbeat.objects.filter(shard=self.shard, pid=self.process.pid).exists()
                   or self.process.poll() is not None, timeout, message="the worker to start serving")

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


@pytest.fixture
def worker():
    process = WorkerProcess()
    yield process
    if process.running():
        process.kill()


def inbox_empty() -> bool:
    """Nothing left for the worker: no pending order, and no pending cancel or reduce request (a stream's last
    batches may hold only those)."""
    return not Order.objects.filter(status="pending").exists() and \
        not OrderRequest.objects.filter(status="pending").exists()


def wait_until(condition, timeout: float, every: float = 0.05, message: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(every)
