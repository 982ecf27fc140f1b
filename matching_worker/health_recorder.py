"""The worker's health figures, per pair, per book, per minute, upserted every few seconds as `HealthSample`
rows: the automatic steps and rollbacks of the control plane and the operator's status read these."""
from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from django.db import connection
from psycopg2.extras import execute_values

from matching.book_health import BookHealth

if TYPE_CHECKING:
    from matching_worker.pairs import PairRuntime

DEFAULT_MEMORY_LIMIT_MB = 2048


def resident_memory_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


def memory_limit_bytes() -> int:
    """The worker's memory limit: MATCHING_WORKER_MEMORY_LIMIT_MB, else the cgroup's limit, else 2 GiB."""
    configured = os.environ.get("MATCHING_WORKER_MEMORY_LIMIT_MB")
    if configured:
        return int(float(configured) * 2**20)
    try:
        with open("/sys/fs/cgroup/memory.max") as limit:
            value = limit.read().strip()
        if value != "max":
            return int(value)
    except OSError:
        pass
    return DEFAULT_MEMORY_LIMIT_MB * 2**20


class HealthRecorder:
    """Keeps the current minute's figures of every engine of a worker and upserts them as HealthSample rows.
    `pairs` gives the worker's pairs as they are now (the worker replaces them when it reloads its books)."""

    def __init__(self, pairs: Callable[[], dict[int, PairRuntime]], every: float = 2.0) -> None:
        self.pairs = pairs
        self.every = every
        self.trips: dict[int, int] = {}          # pair id -> breaker trips this minute
        self.minute = current_minute()
        self._last_flush = 0.0
        self.memory_limit = memory_limit_bytes()

    def count_breaker_trips(self, trips: dict[int, int]) -> None:
        """Adds a batch's breaker trips (pair id -> times opened) to the minute's."""
        for pair_id, opened in trips.items():
            self.trips[pair_id] = self.trips.get(pair_id, 0) + opened

    def flush_if_due(self) -> None:
        if time.monotonic() - self._last_flush >= self.every:
            self.flush()

    def flush(self, minute: datetime | None = None) -> None:
        """Writes the figures of the minute in progress; at a new minute, closes the old one first."""
        minute = minute or current_minute()
        if minute != self.minute:
            self._write(self.minute)
            for runtime in self.pairs().values():
                runtime.engine.health = {"legacy": BookHealth(), "adaptive": BookHealth()}
            self.trips.clear()
            self.minute = minute
        self._write(minute)
        self._last_flush = time.monotonic()

    def _write(self, minute: datetime) -> None:
        memory = resident_memory_bytes()
        rows = []
        for pair_id, runtime in self.pairs().items():
            engine = runtime.engine
            for book, health in engine.health.items():
                if not health.commands and getattr(engine, book) is None:
                    continue
                figures = health.figures()
                rows.append((pair_id, minute, book, figures["commands"], figures["errors"], figures["divergences"],
                             figures["latency_p50_us"], figures["latency_p95_us"], figures["latency_p99_us"],
                             engine.breaker.state, self.trips.get(pair_id, 0), memory, self.memory_limit))
        if not rows:
            return
        with connection.cursor() as cursor:
            execute_values(
                cursor.cursor,
                "INSERT INTO exchange_healthsample (pair_id, minute, book, commands, errors, divergences,"
                " latency_p50_us, latency_p95_us, latency_p99_us, breaker_state, breaker_trips, memory_bytes,"
                " memory_limit_bytes, updated_at) VALUES %s ON CONFLICT (pair_id, minute, book) DO UPDATE SET"
                " commands = EXCLUDED.commands, errors = EXCLUDED.errors, divergences = EXCLUDED.divergences,"
                " latency_p50_us = EXCLUDED.latency_p50_us, latency_p95_us = EXCLUDED.latency_p95_us,"
                " latency_p99_us = EXCLUDED.latency_p99_us, breaker_state = EXCLUDED.breaker_state,"
                " breaker_trips = EXCLUDED.breaker_trips, memory_bytes = EXCLUDED.memory_bytes,"
                " memory_limit_bytes = EXCLUDED.memory_limit_bytes, updated_at = now()",
                rows, template="(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now())")


def current_minute() -> datetime:
    return datetime.now(UTC).replace(second=0, microsecond=0)
