"""The whole exchange as `make run` runs it, under load: a matching worker killed with SIGKILL is back within
seconds while the web keeps answering, a stop under load answers every order it committed, and nothing of the
exchange outlives its supervisor."""
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token

from exchange.models import Order
from tests.integration.conftest import ROOT, free_port, wait_until, worker_environment
from tests.integration.order_stream import prepare_market

pytestmark = pytest.mark.django_db(transaction=True)



class Exchange:
    """`manage.py run_exchange` on the test database, with a marker in its environment that every process it
    starts inherits, so that none can hide."""

    def __init__(self, var_dir: Path, **environment: str) -> None:
        self.port = free_port()
        self.marker = uuid.uuid4().hex
        self.var_dir = var_dir
        env = {**worker_environment(), "PORT": str(self.port), "WEBSOCKET_PORT": str(free_port()),
               "EXCHANGE_VAR_DIR": str(var_dir), "REDIS_URL": settings.REDIS_URL, "WEB_PROCESSES": "1",
               "EXCHANGE_ADMIN_PASSWORD": "not-the-default", "EXCHANGE_TEST_RUN": self.marker, **environment}
        self.process = subprocess.Popen([sys.executable, "manage.py", "run_exchange"], cwd=ROOT, env=env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: self.health().get("status") == "ok", 60, 0.2, "the exchange to serve")

    def request(self, method: str, path: str, body: object = None, token: str | None = None) -> tuple[int, dict]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        headers = {"Content-Type": "application/json", **({"Authorization": f"Token {token}"} if token else {})}
        try:
            connection.request(method, path, json.dumps(body) if body is not None else None, headers)
            response = connection.getresponse()
            return response.status, json.loads(response.read() or b"{}")
        finally:
            connection.close()

    def health(self) -> dict:
        try:
            return self.request("GET", "/health")[1]
        except OSError:
            return {}

    def pid(self, name: str) -> int:
        return json.loads((self.var_dir / "run_exchange.pid").read_text())[name][0]

    def processes(self) -> list[int]:
        """Every live process started by this exchange, however deep."""
        found = []
        for entry in Path("/proc").iterdir():
            try:
                if entry.name.isdigit() and self.marker.encode() in (entry / "environ").read_bytes():
                    if (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                        found.append(int(entry.name))
            except OSError:
                continue
        return found


@pytest.fixture
def exchange(tmp_path):
    prepare_market()
    running = Exchange(tmp_path)
    yield running
    for pid in running.processes():
        os.kill(pid, signal.SIGKILL)


@pytest.fixture
def tokens(exchange) -> list[str]:
    """API tokens of two of the market's traders."""
    return [Token.objects.get_or_create(user=User.objects.get(username=f"trader{n}"))[0].key for n in (1, 2)]


class Flow(threading.Thread):
    """Places orders one after another (each with its client order id) and notes every answer."""

    def __init__(self, exchange: Exchange, token: str, batch: int = 0) -> None:
        super().__init__(daemon=True)
        self.exchange, self.token, self.batch = exchange, token, batch
        self.answers: list[tuple[int, int]] = []      # (status, orders created by it)
        self.stop = threading.Event()

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            order = {"pair": "BTCUSDT", "side": "buy" if n % 2 else "sell", "quantity": "0.001",
                     "price": "50000.00" if n % 2 else "50000.01", "client_order_id": f"{self.token[:8]}-{n}"}
            try:
                if self.batch:
                    orders = [{**order, "client_order_id": f"{order['client_order_id']}-{i}"}
                              for i in range(self.batch)]
                    status, _ = self.exchange.request("POST", "/api/orders/batch/", {"orders": orders}, self.token)
                else:
                    status, _ = self.exchange.request("POST", "/api/orders/", order, self.token)
            except OSError:
                status = 0
            self.answers.append((status, (self.batch or 1) if status == 201 else 0))
            time.sleep(0.01)


def test_a_killed_worker_is_back_within_seconds_while_the_web_keeps_answering(exchange, tokens):
    flow = Flow(exchange, tokens[0])
    flow.start()
    wait_until(lambda: sum(1 for status, _ in flow.answers if status == 201) >= 20, 30, message="orders flowing")
    worker = exchange.pid("matching-worker-0")

    os.kill(worker, signal.SIGKILL)
    killed_at, answered_before = time.monotonic(), len(flow.answers)

    wait_until(lambda: exchange.pid("matching-worker-0") != worker and exchange.health().get("status") == "ok",
               20, 0.1, "a new worker to serve")
    back_after = time.monotonic() - killed_at
    wait_until(lambda: flow.answers[-1][0] == 201, 10, message="orders accepted again")
    flow.stop.set()
    flow.join()
    answers_meanwhile = {status for status, _ in flow.answers[answered_before:]}
    assert answers_meanwhile <= {201, 503}, answers_meanwhile     # never a refused connection, never a 5xx but 503
    assert back_after < 10
    wait_until(lambda: not Order.objects.filter(status="pending").exists(), 20,
               message="every accepted order to be taken")
    assert Order.objects.count() == sum(created for _, created in flow.answers)


def test_a_stop_under_load_answers_every_order_it_committed(exchange, tokens):
    flows = [Flow(exchange, token, batch=20) for token in tokens]
    for flow in flows:
        flow.start()
    wait_until(lambda: all(len(flow.answers) >= 5 for flow in flows), 30, message="batches flowing")

    exchange.process.send_signal(signal.SIGTERM)
    code = exchange.process.wait(40)
    for flow in flows:
        flow.stop.set()
        flow.join()

    assert code == 0
    answered = sum(created for flow in flows for _, created in flow.answers)
    assert Order.objects.count() == answered, "an order was committed but its client never saw the answer"
    assert exchange.processes() == []


def test_nothing_of_the_exchange_outlives_its_killed_supervisor(exchange):
    assert len(exchange.processes()) >= 6

    exchange.process.kill()

    wait_until(lambda: exchange.processes() == [], 20, 0.2, "every process of the exchange to stop")
