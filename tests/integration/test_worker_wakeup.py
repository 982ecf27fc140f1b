"""The worker sleeps on LISTEN and is woken by the API's NOTIFY, not by its own timer; while idle it keeps
its heartbeat fresh."""
import time

import pytest
from rest_framework.test import APIClient

from exchange.models import Order, WorkerHeartbeat
from tests.integration.conftest import wait_until
from tests.integration.order_stream import prepare_market

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_order_wakes_the_sleeping_worker_long_before_its_idle_timer(worker):
    users = prepare_market()
    worker.start("--heartbeat", "30")          # its idle look at the inbox comes only every 30 s
    worker.wait_ready()
    time.sleep(0.5)                            # asleep in select() by now
    client = APIClient()
    client.force_authenticate(users[1])

    placed_at = time.monotonic()
    response = client.post("/api/orders/", {"pair": "BTCUSDT", "side": "buy", "price": "50000.00",
                                            "quantity": "0.001"}, format="json")
    assert response.status_code == 201
    wait_until(lambda: Order.objects.get(id=response.json()["id"]).status != "pending", timeout=10,
               message="the NOTIFY to wake the worker")

    assert time.monotonic() - placed_at < 5
    assert worker.stop() == 0


def test_an_idle_worker_keeps_its_heartbeat_fresh(worker):
    prepare_market()
    worker.start()                             # heartbeat every 0.5 s
    worker.wait_ready()
    first = WorkerHeartbeat.objects.get(shard=0).last_seen
    wait_until(lambda: WorkerHeartbeat.objects.get(shard=0).last_seen > first, timeout=5,
               message="a second heartbeat")
    second = WorkerHeartbeat.objects.get(shard=0).last_seen
    wait_until(lambda: WorkerHeartbeat.objects.get(shard=0).last_seen > second, timeout=5,
               message="a third heartbeat")
    assert worker.stop() == 0
