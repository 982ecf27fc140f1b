"""The /health endpoint reports the real database and Redis."""

import json
import time

import pytest
from django.utils import timezone

from exchange.models import WorkerHeartbeat
from exchange.trading.pairs import ensure_demo_pairs


@pytest.mark.django_db
def test_health_is_ok_when_database_and_redis_answer(client):
    response = client.get("/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok",
                               "checks": {"database": "ok", "redis": "ok", "matching_worker": "ok"}}


@pytest.mark.django_db
def test_health_is_unavailable_when_redis_does_not_answer(client, settings, tmp_path):
    settings.REDIS_URL = f"unix://{tmp_path}/no-redis.sock"

    response = client.get("/health")

    assert response.status_code == 503
    assert response.json()["checks"]["redis"].startswith("error:")
    assert response.json()["checks"]["database"] == "ok"


@pytest.mark.django_db
def test_health_fails_naming_the_shard_that_has_no_worker_heartbeat(client):
    """The guide's `curl -f /health` must not pass while a shard's orders cannot be matched."""
    ensure_demo_pairs()

    response = client.get("/health")

    assert response.status_code == 503
    assert response.json()["status"] == "degraded"
    assert response.json()["checks"]["matching_worker"] == "no live matching worker for shard(s) [0]"


@pytest.mark.django_db
def test_health_is_ok_with_a_fresh_worker_heartbeat(client):
    ensure_demo_pairs()
    now = timezone.now()
    WorkerHeartbeat.objects.create(shard=0, pid=1, hostname="test", started_at=now, last_seen=now)

    assert client.get("/health").json()["status"] == "ok"


@pytest.mark.django_db
def test_liveness_answers_whatever_the_dependencies_do(client, settings, tmp_path):
    settings.REDIS_URL = f"unix://{tmp_path}/no-redis.sock"

    assert (client.get("/live").status_code, client.get("/live").json()) == (200, {"status": "ok"})


def live_worker() -> None:
    now = timezone.now()
    WorkerHeartbeat.objects.create(shard=0, pid=1, hostname="test", started_at=now, last_seen=now)


@pytest.mark.django_db
def test_ready_needs_celery_beat_to_have_ticked_lately(client):
    from exchange.market.published import store
    from exchange.ops.beat import BEAT_TICK_KEY, record_beat_tick

    ensure_demo_pairs()
    live_worker()
    store().delete(BEAT_TICK_KEY)
    silent = client.get("/ready")
    record_beat_tick(store(), 10.0)
    fresh = client.get("/ready")
    store().set(BEAT_TICK_KEY, json.dumps({"at": time.time() - 3600, "every": 10.0}))
    stale = client.get("/ready")

    assert (silent.status_code, silent.json()["checks"]["celery_beat"]) == (503, "celery beat has not ticked")
    assert stale.status_code == 503 and stale.json()["checks"]["celery_beat"].startswith("celery beat silent for")
    assert (fresh.status_code, fresh.json()) == (200, {"status": "ok", "checks": {
        "database": "ok", "redis": "ok", "matching_worker": "ok", "celery_beat": "ok"}})


@pytest.mark.django_db
def test_the_health_check_command_exits_non_zero_naming_what_is_not_ready(capsys):
    from django.core.management import CommandError, call_command

    from exchange.market.published import store
    from exchange.ops.beat import record_beat_tick

    ensure_demo_pairs()
    record_beat_tick(store(), 10.0)
    with pytest.raises(CommandError, match=r"not ready: matching_worker"):
        call_command("health_check")
    live_worker()
    call_command("health_check")

    assert json.loads(capsys.readouterr().out.splitlines()[-1])["status"] == "ok"
