"""Readiness checks of the services the exchange cannot work without."""

import redis
from django.conf import settings
from django.db import connection

CHECK_TIMEOUT_SECONDS = 2
WORKER_HEARTBEAT_STALE_SECONDS = 30


def check_database() -> str:
    """`ok` when the default database answers a query, else the error."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as error:  # noqa: BLE001 - any failure means "not ready"; the message is reported
        return f"error: {error}"
    return "ok"


def check_redis() -> str:
    """`ok` when Redis answers PING, else the error."""
    client = redis.Redis.from_url(
        settings.REDIS_URL, socket_timeout=CHECK_TIMEOUT_SECONDS, socket_connect_timeout=CHECK_TIMEOUT_SECONDS
    )
    try:
        client.ping()
    except redis.RedisError as error:
        return f"error: {error}"
    finally:
        client.close()
    return "ok"


def check_matching_workers() -> str:
    """`ok` when every shard that has pairs has a worker heartbeat younger than WORKER_HEARTBEAT_STALE_SECONDS."""
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT p.shard, extract(epoch FROM now() - h.last_seen) FROM exchange_tradingpair p"
                " LEFT JOIN exchange_workerheartbeat h ON h.shard = p.shard GROUP BY p.shard, h.last_seen")
            shards = cursor.fetchall()
    except Exception as error:  # noqa: BLE001 - reported, like the database check
        return f"error: {error}"
    missing = [shard for shard, age in shards if age is None]
    stale = [shard for shard, age in shards if age is not None and age > WORKER_HEARTBEAT_STALE_SECONDS]
    if missing or stale:
        return f"no recent heartbeat from shard(s) {sorted(set(missing + stale))}"
    return "ok"


def health_report() -> tuple[bool, dict]:
    """Run every check. Healthy (200) when the database and Redis answer; a matching worker without a recent
    heartbeat makes the status `degraded` (orders are accepted and wait in the inbox) but not unavailable,
    so a load balancer keeps the web process."""
    checks = {"database": check_database(), "redis": check_redis(), "matching_worker": check_matching_workers()}
    healthy = checks["database"] == "ok" and checks["redis"] == "ok"
    status = "unavailable" if not healthy else "ok" if checks["matching_worker"] == "ok" else "degraded"
    return healthy, {"status": status, "checks": checks}
