"""`make validate-deployment` against a running exchange: every criterion of the deployment guide printed with
its measured figure and PASS or FAIL, and a non-zero exit when one fails."""
import os
import signal
import subprocess
import sys

import pytest
from django.conf import settings

from exchange.models import TradingPair
from tests.integration.conftest import ROOT, worker_environment
from tests.integration.order_stream import prepare_market
from tests.integration.test_supervised_exchange import Exchange

pytestmark = pytest.mark.django_db(transaction=True)
CRITERIA = ("automated tests", "error rate", "latency P95", "throughput", "circuit breakers", "deadlocks",
            "monitoring", "price-time priority", "trade correctness", "rollback procedure")


@pytest.fixture
def exchange(tmp_path):
    prepare_market()
    # Metrics and Celery's ticks every second, so that every process's series are on /metrics at once.
    running = Exchange(tmp_path, METRICS_COLLECTION_INTERVAL="1s", MIGRATION_TICK_INTERVAL="1s")
    yield running
    for pid in running.processes():
        os.kill(pid, signal.SIGKILL)


def test_every_criterion_is_measured_and_one_failure_fails_the_run(exchange):
    # A P95 limit no server meets: that criterion must FAIL and fail the run; the others are measured for real.
    run = subprocess.run(
        [sys.executable, "manage.py", "validate_deployment", f"--base-url=http://127.0.0.1:{exchange.port}",
         "--tests=none", "--duration=3s", "--rate=40", "--min-throughput=30", "--max-p95-ms=0.001",
         "--stream-orders=60"],
        cwd=ROOT, env={**worker_environment(), "REDIS_URL": settings.REDIS_URL}, capture_output=True, text=True,
        timeout=300)

    lines = {line[6:34].strip(): (line[:4], line[34:].strip()) for line in run.stdout.splitlines()
             if line[:4] in ("PASS", "FAIL", "SKIP") and len(line) > 34}
    assert tuple(lines) == CRITERIA, run.stdout + run.stderr
    assert lines["automated tests"][0] == "SKIP"
    assert lines["latency P95"][0] == "FAIL" and "(< 0.001 ms)" in lines["latency P95"][1]
    passed = [name for name in CRITERIA[1:] if name != "latency P95"]
    assert [name for name in passed if lines[name][0] != "PASS"] == [], run.stdout
    assert "orders/s achieved of 40 offered" in lines["throughput"][1]
    assert "series of web, 1 worker(s), Celery present" in lines["monitoring"][1]
    assert "3 trades" in lines["price-time priority"][1]
    assert run.stdout.splitlines()[-1] == "FAIL: latency P95"
    assert run.returncode == 1
    assert TradingPair.objects.get(symbol="CHECKUSDT").status == "halted"
