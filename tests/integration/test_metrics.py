"""Every process's metrics on the web's one /metrics: a worker's trading series reach the guide's
`curl /metrics | grep trading_latency`, labelled with the process, and drop out once it stops publishing."""
import json
import re
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

from exchange.market.published import store
from exchange.ops.process_metrics import WebPublisher, process_key, web_process_name
from exchange.trading.pairs import ensure_demo_pairs
from matching_worker.worker import MatchingWorker
from tests.exchange.factories import make_live_worker

pytestmark = pytest.mark.django_db(transaction=True)
GRAFANA = Path(__file__).resolve().parent.parent.parent / "deploy" / "grafana"


def place(client: APIClient, side: str, price: str, quantity: str = "0.5") -> None:
    response = client.post("/api/orders/", {"pair": "BTCUSDT", "side": side, "price": price, "quantity": quantity},
                           format="json")
    assert response.status_code == 201, response.content


def scrape() -> dict[str, list]:
    """/metrics as the scraper reads it: family name -> samples."""
    response = Client().get("/metrics")
    assert response.status_code == 200
    return {family.name: family.samples for family in text_string_to_metric_families(response.content.decode())}


@pytest.fixture
def traded():
    """A worker in this process that committed a batch of three orders, one trade among them, and published its
    metrics."""
    ensure_demo_pairs()
    make_live_worker(0)
    seller, buyer = APIClient(), APIClient()
    seller.force_authenticate(User.objects.get_or_create(username="metrics-seller")[0])
    buyer.force_authenticate(User.objects.get_or_create(username="metrics-buyer")[0])
    place(seller, "sell", "100")
    place(seller, "sell", "101")
    place(buyer, "buy", "100", "0.2")
    worker = MatchingWorker(0)
    try:
        assert worker.process_batch() == 3
        worker.publish_metrics_if_due()
    finally:
        worker.close()
    yield
    store().delete(process_key("worker-0"))


def value(samples: list, name: str, **labels: str) -> float:
    matching = [s.value for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]
    assert matching, f"no {name} with {labels}"
    return sum(matching)


def test_the_workers_trading_series_are_on_the_webs_metrics(traded):
    families = scrape()

    assert value(families["trading_orders"], "trading_orders_total", pair="BTCUSDT", kind="place",
                 process="worker-0") == 3
    assert value(families["trading_trades"], "trading_trades_total", pair="BTCUSDT", process="worker-0") == 1
    assert value(families["trading_latency_seconds"], "trading_latency_seconds_count", stage="order_processing",
                 process="worker-0") == 3
    assert value(families["trading_latency_seconds"], "trading_latency_seconds_count", stage="trade_execution",
                 process="worker-0") == 1
    assert value(families["trading_order_processing_latency_p95"], "trading_order_processing_latency_p95",
                 process="worker-0") > 0
    assert value(families["trading_circuit_breaker_open"], "trading_circuit_breaker_open", pair="BTCUSDT") == 0
    assert value(families["trading_migration_mode"], "trading_migration_mode", pair="BTCUSDT",
                 mode="legacy_only") == 1
    assert value(families["trading_batch_size"], "trading_batch_size_sum", process="worker-0") == 3
    assert value(families["trading_worker_memory_bytes"], "trading_worker_memory_bytes") > 10_000_000
    # the web's own series are there too, one family per name across the processes
    assert value(families["process_resident_memory_bytes"], "process_resident_memory_bytes",
                 process=web_process_name()) > 0
    assert value(families["process_resident_memory_bytes"], "process_resident_memory_bytes", process="worker-0") > 0


def test_the_guides_grep_finds_the_latency_series(traded):
    text = Client().get("/metrics").content.decode()

    lines = [line for line in text.splitlines() if "trading_latency" in line]
    assert {line.split("{")[0] for line in lines if not line.startswith("#")} >= {
        "trading_latency_seconds_bucket", "trading_latency_seconds_sum", "trading_latency_seconds_count"}
    assert {stage for line in lines for stage in re.findall(r'stage="(\w+)"', line)} >= {
        "order_processing", "trade_execution"}


def test_a_process_that_stops_publishing_drops_out(traded):
    store().delete(process_key("worker-0"))

    assert "trading_orders" not in scrape()


def test_every_dashboard_panel_queries_series_the_system_exports(traded):
    """Each metric a Grafana panel's query names is on /metrics once a worker has traded (a histogram's
    `_bucket`, `_sum` and `_count` and a counter's `_total` name their family)."""
    exported = set()
    for name, samples in scrape().items():
        exported |= {name} | {sample.name for sample in samples}
    for board in GRAFANA.glob("*.json"):
        for panel in json.loads(board.read_text())["panels"]:
            for target in panel["targets"]:
                for metric in re.findall(r"\b((?:trading|process|python|django)_[a-z0-9_]+)\b", target["expr"]):
                    assert metric in exported, f"{board.name}: panel {panel['title']!r} queries {metric}"


def test_the_control_planes_runs_reach_the_webs_metrics():
    """A Celery pool process counts each control plane task it runs and hands its registry over like a worker."""
    import exchange.ops.celery_metrics as celery_metrics
    from migrations_admin.tasks import evaluate_rollbacks

    celery_metrics._worker_process_started()            # what Celery signals in each pool process
    name = celery_metrics._publisher.name
    try:
        before = celery_metrics.TASKS.labels("evaluate_rollbacks", "SUCCESS")._value.get()
        evaluate_rollbacks.apply()
        celery_metrics._publisher.publish()
        families = scrape()
        assert value(families["trading_control_plane_tasks"], "trading_control_plane_tasks_total",
                     task="evaluate_rollbacks", state="SUCCESS", process=name) == before + 1
        assert value(families["trading_control_plane_task_duration_seconds"],
                     "trading_control_plane_task_duration_seconds_count", task="evaluate_rollbacks",
                     process=name) >= 1
    finally:
        store().delete(process_key(name))
        celery_metrics._publisher = None


def test_each_web_process_is_one_series_whichever_answers_the_scrape():
    """Two web processes: each hands its registry over after its requests, under `web:<host>:<pid>`; the one that
    answers shows its own series fresh and the other's from Redis, and never its own twice."""
    other = "web:other-pod:4242"
    store().set(process_key(other), "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes 123\n")
    WebPublisher(store(), 0).after_request()           # this process, after a request
    try:
        families = scrape()
        memory = {sample.labels["process"]: sample.value for sample in families["process_resident_memory_bytes"]
                  if sample.labels["process"].startswith("web:")}
        assert set(memory) == {web_process_name(), other} and memory[other] == 123
        assert store().get(process_key(web_process_name())) is not None
    finally:
        store().delete(process_key(other), process_key(web_process_name()))
