"""A shard without a serving worker is said so: placement on its pairs answers 503 `pair_unavailable` with a
retry hint and writes nothing, and /health names the shard, each judging a heartbeat by the worker's own
interval and a clean stop at once."""
from datetime import timedelta

import pytest
from django.utils import timezone

from exchange.models import Order, WorkerHeartbeat

ORDER = {"pair": "BTCUSDT", "side": "buy", "price": "50000.01", "quantity": "0.5"}


def heartbeat(seconds_ago: float, interval: float, stopped: bool = False) -> None:
    now = timezone.now()
    WorkerHeartbeat.objects.update_or_create(shard=0, defaults=dict(
        pid=1, hostname="test", started_at=now - timedelta(hours=1), last_seen=now - timedelta(seconds=seconds_ago),
        interval_seconds=interval, stopped_at=now if stopped else None))


@pytest.mark.parametrize(("seconds_ago", "interval", "stopped"), [
    (2.0, 0.5, False),       # missed three of its half-second heartbeats
    (0.0, 2.0, True),        # stopped cleanly a moment ago
], ids=["silent-for-three-heartbeats", "stopped"])
@pytest.mark.django_db
def test_placement_on_a_shard_without_a_serving_worker_is_refused_with_a_retry_hint(api, btc, seconds_ago,
                                                                                   interval, stopped):
    heartbeat(seconds_ago, interval, stopped)

    single = api.post("/api/orders/", ORDER, format="json")
    batch = api.post("/api/orders/batch/", {"orders": [ORDER, ORDER]}, format="json")

    for response in (single, batch):
        assert (response.status_code, response.json()["error"]["code"]) == (503, "pair_unavailable")
        assert response["Retry-After"] == "2"
    assert not Order.objects.exists()


@pytest.mark.django_db
def test_placement_on_a_shard_never_served_is_refused(api, btc):
    WorkerHeartbeat.objects.all().delete()

    assert api.post("/api/orders/", ORDER, format="json").status_code == 503


@pytest.mark.django_db
def test_a_worker_with_a_slow_heartbeat_is_still_serving_between_two_beats(api, btc):
    heartbeat(seconds_ago=20.0, interval=10.0)

    assert api.post("/api/orders/", ORDER, format="json").status_code == 201


@pytest.mark.parametrize(("seconds_ago", "interval", "stopped", "status"), [
    (0.2, 0.5, False, "ok"),
    (2.0, 0.5, False, "degraded"),
    (20.0, 10.0, False, "ok"),
    (0.0, 2.0, True, "degraded"),
], ids=["fresh", "three-beats-missed", "slow-but-on-time", "stopped"])
@pytest.mark.django_db
def test_health_judges_a_worker_by_its_own_heartbeat_interval(client, btc, seconds_ago, interval, stopped, status):
    heartbeat(seconds_ago, interval, stopped)

    report = client.get("/health").json()

    assert report["status"] == status
    if status == "degraded":
        assert report["checks"]["matching_worker"] == "no live matching worker for shard(s) [0]"
