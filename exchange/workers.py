"""What every other process knows of the matching workers: whether a shard's worker serves, from the heartbeat
it writes between its batches (`exchange_workerheartbeat`).

The web asks it before accepting an order (an order for a shard whose worker is gone would wait unseen: it is
refused with 503 `pair_unavailable` instead), the probes report it, and the operator's tools refuse to wait for
a worker that is not there.
"""
from __future__ import annotations

import threading
import time

from django.db import connection

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


def shards_without_live_worker(shards: list[int]) -> list[int]:
    """The shards among `shards` whose worker stopped, or missed MISSED_HEARTBEATS of its heartbeats."""
    with connection.cursor() as cursor:
        cursor.execute(SHARDS_WITHOUT_LIVE_WORKER, [shards, MISSED_HEARTBEATS, MIN_SILENCE_SECONDS])
        return [shard for (shard,) in cursor.fetchall()]


def has_heartbeat(shard: int) -> bool:
    """Whether the shard's worker has written a heartbeat and not said it stopped."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM exchange_workerheartbeat WHERE shard = %s AND stopped_at IS NULL", [shard])
        return cursor.fetchone() is not None


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
