"""Celery beat's sign of life: written as it sends its periodic tasks (`exchange/ops/celery_metrics.py`), read by
the readiness checks (`exchange/ops/health.py`), so `/ready` fails when beat has stopped sending them."""
from __future__ import annotations

import json
import time

import redis

from exchange.stores import redis_client

BEAT_TICK_KEY = "celery-beat:last-tick"
BEAT_TICKS_MISSED = 3          # beat is taken for gone once this many of its ticks are overdue
MIN_SILENCE_SECONDS = 1.0


def record_beat_tick(store: redis.Redis, every: float) -> None:
    """Beat sent its periodic tasks now; it sends them every `every` seconds."""
    store.set(BEAT_TICK_KEY, json.dumps({"at": time.time(), "every": every}))


def check_celery_beat(timeout: float) -> str:
    """`ok` when celery beat sent its periodic tasks within BEAT_TICKS_MISSED of its own ticks."""
    client = redis_client(timeout=timeout)
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
