"""The /health endpoint reports the real database and Redis."""

import pytest
from django.utils import timezone

from exchange.models import WorkerHeartbeat
from exchange.pairs import ensure_demo_pairs


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
def test_health_is_degraded_but_up_when_a_shard_has_no_worker_heartbeat(client):
    ensure_demo_pairs()

    response = client.get("/health")

    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    assert response.json()["checks"]["matching_worker"] == "no live matching worker for shard(s) [0]"


@pytest.mark.django_db
def test_health_is_ok_with_a_fresh_worker_heartbeat(client):
    ensure_demo_pairs()
    now = timezone.now()
    WorkerHeartbeat.objects.create(shard=0, pid=1, hostname="test", started_at=now, last_seen=now)

    assert client.get("/health").json()["status"] == "ok"
