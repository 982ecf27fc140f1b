"""What `/health`, `/ready` and `manage.py health_check` report: the parts the exchange cannot work without.

- `/live`: this process answers (a liveness probe: restarting it would not mend a database outage).
- `/health`: the deployment guide's check (`curl -f /health`): 200 only when the database and Redis answer and
  every shard that has pairs has a live matching worker; otherwise 503 naming what is not (`degraded` when only
  workers are missing, `unavailable` when the database or Redis is).
- `/ready` and `health_check`: `/health`'s parts and Celery beat, whose last tick must be recent: the whole
  system is ready (a blue-green switch, the guide's `/app/health-check`)."""

import redis
from django.db import connection

from exchange.ops.beat import check_celery_beat
from exchange.stores import redis_client
from exchange.workers import has_heartbeat, shards_without_live_worker

CHECK_TIMEOUT_SECONDS = 2


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
    client = redis_client(timeout=CHECK_TIMEOUT_SECONDS)
    try:
        client.ping()
    except redis.RedisError as error:
        return f"error: {error}"
    finally:
        client.close()
    return "ok"


def check_matching_workers() -> str:
    """`ok` when every shard that has pairs has a live worker; otherwise names the shards that have none."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT DISTINCT shard FROM exchange_tradingpair")
            shards = [shard for (shard,) in cursor.fetchall()]
        without = shards_without_live_worker(shards)
    except Exception as error:  # noqa: BLE001 - reported, like the database check
        return f"error: {error}"
    if without:
        return f"no live matching worker for shard(s) {without}"
    return "ok"


def check_shard_worker(shard: int) -> str:
    """`ok` when the shard's worker has a fresh heartbeat (a worker's own probe)."""
    if not shards_without_live_worker([shard]) and _has_heartbeat(shard):
        return "ok"
    return f"no live matching worker for shard {shard}"


def _has_heartbeat(shard: int) -> bool:
    try:
        return has_heartbeat(shard)
    except Exception:  # noqa: BLE001 - the database check says why
        return False


def check_beat() -> str:
    return check_celery_beat(CHECK_TIMEOUT_SECONDS)


def health_report(with_beat: bool = False) -> tuple[bool, dict]:
    """Runs the checks; healthy when every part is. A shard without a live worker leaves the status `degraded`
    (its pairs refuse orders with 503 `pair_unavailable`, the others trade), the database or Redis down makes it
    `unavailable`; either way the answer is 503, so `curl -f /health` fails until the whole exchange serves."""
    checks = {"database": check_database(), "redis": check_redis(), "matching_worker": check_matching_workers()}
    if with_beat:
        checks["celery_beat"] = check_beat()
    healthy = all(result == "ok" for result in checks.values())
    core = checks["database"] == "ok" and checks["redis"] == "ok"
    status = "ok" if healthy else "degraded" if core else "unavailable"
    return healthy, {"status": status, "checks": checks}


ROLES = ("system", "web", "worker", "celery-worker", "celery-beat")


def role_report(role: str, shard: int | None = None) -> tuple[bool, dict]:
    """What one process needs to do its work, for its own probe: a web process needs the database and Redis (a
    shard without its worker refuses only that shard's orders), a matching worker its shard's fresh heartbeat,
    Celery's worker the database and Redis, beat its ticks. `system` is `/ready`: every part."""
    if role == "system":
        return health_report(with_beat=True)
    if role == "worker":
        if shard is None:
            raise ValueError("the worker role needs its shard")
        parts = {"database": check_database, f"matching_worker_{shard}": lambda: check_shard_worker(shard)}
    elif role in ("web", "celery-worker"):
        parts = {"database": check_database, "redis": check_redis}
    elif role == "celery-beat":
        parts = {"redis": check_redis, "celery_beat": check_beat}
    else:
        raise ValueError(f"unknown role {role!r}: one of {', '.join(ROLES)}")
    checks = {name: check() for name, check in parts.items()}
    healthy = all(result == "ok" for result in checks.values())
    return healthy, {"status": "ok" if healthy else "unavailable", "role": role, "checks": checks}
