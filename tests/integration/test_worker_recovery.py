"""Nothing lost, nothing doubled: the worker killed with SIGKILL at random moments under a live stream ends
exactly where an uninterrupted worker ends; an order accepted while no worker ran is executed later."""
import random
import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from exchange.models import Order, Trade
from tests.integration.conftest import wait_until
from tests.integration.order_stream import (
    feed,
    final_state,
    make_stream,
    prepare_market,
    reset_market,
    worker_audit_trail,
)

pytestmark = pytest.mark.django_db(transaction=True)

STREAM_LENGTH = 24_000           # entries: about 20,300 orders and 3,700 cancel requests


def pending_count() -> int:
    return Order.objects.filter(status="pending").count()


def run_uninterrupted(worker, stream, users):
    worker.start()
    ids = feed(stream, users, pause=0.02)
    wait_until(lambda: pending_count() == 0, timeout=180, message="the inbox to drain")
    assert worker.stop() == 0
    return ids


def run_with_kills(worker, stream, users, kills: int, seed: int):
    """Kills the worker `kills` times while the stream is fed; returns the ids and how many kills hit a
    worker that still had work in its inbox.

    The kills land at random points of the stream's progress (shares of its orders executed), each once
    the restarted worker serves: on a timer, a fast machine drained the stream before the later kills."""
    rng = random.Random(seed)
    orders = sum(entry[0] == "place" for entry in stream)
    kill_points = sorted(round(rng.uniform(0.05, 0.9) * orders) for _ in range(kills))
    fed: dict = {}
    feeder = threading.Thread(target=lambda: fed.update(ids=feed_in_thread(stream, users)))
    # Small batches keep the worker busy through the stream, so the kills land mid-batch; the result
    # must not depend on batch boundaries either (the uninterrupted run uses the default size).
    worker.start("--max-batch", "50")
    feeder.start()
    kills_with_work = 0
    for point in kill_points:
        worker.wait_ready()
        wait_until(lambda point=point: executed_count() >= point, timeout=120, every=0.01,
                   message=f"{point} orders executed")
        kills_with_work += pending_count() > 0
        worker.kill()
        worker.start("--max-batch", "50")
    feeder.join()
    wait_until(lambda: pending_count() == 0, timeout=180, message="the inbox to drain after the kills")
    assert worker.stop() == 0
    return fed["ids"], kills_with_work


def executed_count() -> int:
    return Order.objects.exclude(status="pending").count()


def feed_in_thread(stream, users):
    try:
        return feed(stream, users)
    finally:
        connection.close()


def test_worker_killed_at_random_moments_ends_exactly_like_an_uninterrupted_run(worker):
    users = prepare_market()
    stream = make_stream(STREAM_LENGTH, seed=2026)
    assert sum(entry[0] == "place" for entry in stream) >= 20_000

    ids = run_uninterrupted(worker, stream, users)
    expected_orders, expected_trades, expected_requests = final_state(ids)
    expected_audit = worker_audit_trail(ids)
    assert len(expected_trades) > 5_000, "the stream must trade a lot to prove anything"
    assert len(expected_audit) > 1_000, "the stream must cancel and reject orders to prove anything"

    reset_market()
    ids, kills_with_work = run_with_kills(worker, stream, users, kills=5, seed=7)
    orders, trades, requests = final_state(ids)

    assert kills_with_work >= 4, "the kills must hit a worker with work in hand"
    assert pending_count() == 0
    assert len(trades) == len({(t[0], t[1]) for t in trades}), "a trade sequence was used twice"
    assert orders == expected_orders
    assert trades == expected_trades
    assert requests == expected_requests
    assert worker_audit_trail(ids) == expected_audit, "an audit entry was lost or written twice"


def test_an_order_refused_while_the_worker_is_down_is_accepted_and_executed_once_it_serves(worker):
    users = prepare_market()
    client = APIClient()

    def place(user, side: str):
        client.force_authenticate(user)
        return client.post("/api/orders/", {"pair": "BTCUSDT", "side": side, "price": "50000.00",
                                            "quantity": "0.001"}, format="json")

    refused = place(users[1], "sell")
    assert (refused.status_code, refused.json()["error"]["code"]) == (503, "pair_unavailable")
    assert refused["Retry-After"]
    assert not Order.objects.exists()
    worker.start()
    worker.wait_ready()
    ids = []
    for user, side in ((users[1], "sell"), (users[2], "buy")):
        response = place(user, side)
        assert response.status_code == 201, response.content
        ids.append(response.json()["id"])
    wait_until(lambda: pending_count() == 0, timeout=60, message="the worker to take the orders")
    assert worker.stop() == 0
    trade = Trade.objects.get()
    assert (trade.maker_order_id, trade.taker_order_id) == (ids[0], ids[1])
    assert set(Order.objects.values_list("status", flat=True)) == {"filled"}
