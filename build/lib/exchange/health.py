"""What `/health`, `/ready` and `manage.py health_check` report: the parts the exchange cannot work without.

- `/live`: this process answers (a liveness probe: restarting it would not mend a database outage).
- `/health`: the deployment guide's check (`curl -f /health`): 200 only when the database and Redis answer and
  every shard that has pairs has a live matching worker; otherwise 503 naming what is not (`degraded` when only
  workers are missing, `unavailable` when the database or Redis is).
- `/ready` and `health_check`: `/health`'s parts and Celery beat, whose last tick must be recent: the whole
  system is ready (a blue-green switch, the guide's `/app/health-check`)."""

import json
import threading
import time

import redis
from django.conf import settings
from django.db import connection

CHECK_TIMEOUT_SECONDS = 2
# A worker is taken for gone once it has missed this many of its own heartbeats (and at least this long), or
# as soon as it says it stopped.
MISSED_HEARTBEATS = 3
MIN_SILENCE_SECONDS = 1.0
# How long a web process trusts what it learnt of a shard's worker before asking again.
LIVENESS_CACHE_SECONDS = 0.5

SHARDS_WITHOUT_LIVE_WORKER = (
    "SELECT s.shard FROM unnest(%s::integer[]) AS s(shard)"
    " LEFT JOIN exchange_workerheartbeat AS h ON h.shard = s.shard"
    " WHERE h.shard IS NULL OR h.stopped_at IS NOT NULL"
    " OR now() - h.last_seen > make_interval(secs => greatest(%s * h.interval_seconds, %s)) ORDER BY 1")


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


def shards_without_live_worker(shards: list[int]) -> list[int]:
    """The shards among `shards` whose worker stopped, or missed MISSED_HEARTBEATS of its heartbeats."""
    with connection.cursor() as cursor:
        cursor.execute(SHARDS_WITHOUT_LIVE_WORKER, [shards, MISSED_HEARTBEATS, MIN_SILENCE_SECONDS])
        return [shard for (shard,) in cursor.fetchall()]


class WorkerLiveness:
    """Whether a shard's worker serves, as a web process checks it before accepting an order: asked of the
    database at most every LIVENESS_CACHE_SECONDS per shard, since a heartbeat is seconds apart anyway."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._known: dict[int, tuple[float, bool]] = {}       # shard -> (known until, live)

    def is_live(self, shard: int) -> bool:
        known = self._known.get(shard)
        now = time.monotonic()
        if known is not None and now < known[0]:
            return known[1]
        live = not shards_without_live_worker([shard])
        with self._lock:
            self._known[shard] = (now + LIVENESS_CACHE_SECONDS, live)
        return live

    def forget(self) -> None:
        with self._lock:
            self._known.clear()


worker_liveness = WorkerLiveness()


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


BEAT_TICK_KEY = "celery-beat:last-tick"
BEAT_TICKS_MISSED = 3          # beat is taken for gone once this many of its ticks are overdue


def record_beat_tick(store: redis.Redis, every: float) -> None:
    """Celery beat's sign of life, written as it sends its periodic tasks, with how often it sends them
    (`exchange/celery_metrics.py`)."""
    store.set(BEAT_TICK_KEY, json.dumps({"at": time.time(), "every": every}))


def check_celery_beat() -> str:
    """`ok` when celery beat sent its periodic tasks within BEAT_TICKS_MISSED of its own ticks."""
    client = redis.Redis.from_url(
        settings.REDIS_URL, socket_timeout=CHECK_TIMEOUT_SECONDS, socket_connect_timeout=CHECK_TIMEOUT_SECONDS
    )
    try:
        last = client.get(BEAT_TICK_KEY)
    except redis.RedisError as error:
        return f"error: {error}"
    finally:
        client.close()
    if last is None:
        return "celery beat has not ticked"
    tick = json.loads(last)
    silence = time.time() - tick["at"]
    if silence > BEAT_TICKS_MISSED * tick["every"] + MIN_SILENCE_SECONDS:
        return f"celery beat silent for {silence:.0f} s (it ticks every {tick['every']:g} s)"
    return "ok"


def health_report(with_beat: bool = False) -> tuple[bool, dict]:
    """Runs the checks; healthy when every part is. A shard without a live worker leaves the status `degraded`
    (its pairs refuse orders with 503 `pair_unavailable`, the others trade), the database or Redis down makes it
    `unavailable`; either way the answer is 503, so `curl -f /health` fails until the whole exchange serves."""
    checks = {"database": check_database(), "redis": check_redis(), "matching_worker": check_matching_workers()}
    if with_beat:
        checks["celery_beat"] = check_celery_beat()
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
        parts = {"database": check_database,
                 f"matching_worker_{shard}": lambda: "ok" if not shards_without_live_worker([shard]) and
                 _has_heartbeat(shard) else f"no live matching worker for shard {shard}"}
    elif role in ("web", "celery-worker"):
        parts = {"database": check_database, "redis": check_redis}
    elif role == "celery-beat":
        parts = {"redis": check_redis, "celery_beat": check_celery_beat}
    else:
        raise ValueError(f"unknown role {role!r}: one of {', '.join(ROLES)}")
    checks = {name: check() for name, check in parts.items()}
    healthy = all(result == "ok" for result in checks.values())
    return healthy, {"status": "ok" if healthy else "unavailable", "role": role, "checks": checks}


def _has_heartbeat(shard: int) -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM exchange_workerheartbeat WHERE shard = %s AND stopped_at IS NULL", [shard])
            return cursor.fetchone() is not None
    except Exception:  # noqa: BLE001 - the database check says why
        return False
