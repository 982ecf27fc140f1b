"""The Celery processes' metrics, handed to the web's /metrics like a worker's (`exchange/ops/process_metrics.py`):
the control plane's task runs and durations, its automatic decisions (steps, finalizations, rollbacks) and, from
beat, the ticks it sent. Connected to Celery's signals by `exchange/celery.py`, so only Celery's processes count."""
from __future__ import annotations

import os
import socket
import time

import redis
from celery.signals import beat_init, before_task_publish, task_postrun, task_prerun, worker_process_init
from django.conf import settings
from prometheus_client import CollectorRegistry, Counter, GCCollector, Histogram, PlatformCollector, ProcessCollector

from exchange.ops.beat import record_beat_tick
from exchange.ops.process_metrics import MetricsPublisher, count_threads
from exchange.stores import redis_client

registry = CollectorRegistry()
for collector in (ProcessCollector, PlatformCollector, GCCollector):
    collector(registry=registry)
count_threads(registry)
TASKS = Counter("trading_control_plane_tasks", "Control plane task runs by outcome.", ["task", "state"],
                registry=registry)
DURATION = Histogram("trading_control_plane_task_duration_seconds", "How long a control plane task ran.", ["task"],
                     buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30), registry=registry)
DECISIONS = Counter("trading_migration_decisions", "What the automatic migration did to a pair's plan.",
                    ["pair", "decision"], registry=registry)
ROLLBACKS = Counter("trading_automatic_rollbacks", "Plans the rollback triggers rolled back.", ["pair"],
                    registry=registry)
BEAT_TICKS = Counter("trading_beat_ticks", "Periodic tasks celery beat sent.", ["task"], registry=registry)

_started: dict[str, float] = {}
_publisher: MetricsPublisher | None = None      # set in a Celery worker's pool process and in beat only
_beat_every: float | None = None                 # in beat: its shortest period, the interval of its ticks


def _start_publishing(role: str) -> None:
    """Names this process's metrics by its role, host and pid (each pool process publishes its own)."""
    global _publisher
    store = redis_client()
    _publisher = MetricsPublisher(f"{role}:{socket.gethostname()}:{os.getpid()}", registry, store,
                                  settings.METRICS_COLLECTION_INTERVAL)


@worker_process_init.connect
def _worker_process_started(**_) -> None:
    _start_publishing("celery-worker")


def period(schedule) -> float | None:
    """Seconds between a beat entry's runs: a number, or a `schedule`'s interval (a crontab has none)."""
    if isinstance(schedule, (int, float)):
        return float(schedule)
    every = getattr(schedule, "run_every", None)
    return every.total_seconds() if every is not None else None


@beat_init.connect
def _beat_started(sender=None, **_) -> None:
    global _beat_every
    periods = [period(entry["schedule"]) for entry in sender.app.conf.beat_schedule.values()]
    _beat_every = min(filter(None, periods), default=60.0)
    _start_publishing("celery-beat")


@task_prerun.connect
def _task_started(task_id: str, **_) -> None:
    _started[task_id] = time.monotonic()


@task_postrun.connect
def _task_ended(task_id: str, task, retval=None, state: str | None = None, **_) -> None:
    name = task.name.rsplit(".", 1)[-1]
    TASKS.labels(name, state or "UNKNOWN").inc()
    started = _started.pop(task_id, None)
    if started is not None:
        DURATION.labels(name).observe(time.monotonic() - started)
    if name == "auto_migrate" and isinstance(retval, dict):
        for pair, decision in retval.items():
            DECISIONS.labels(pair, str(decision).split(":")[0][:40]).inc()
    elif name == "evaluate_rollbacks" and isinstance(retval, dict):
        for pair in retval:
            ROLLBACKS.labels(pair).inc()
    if _publisher is not None:
        _publisher.publish_if_due()


@before_task_publish.connect
def _task_sent(sender: str | None = None, **_) -> None:
    """In beat (and wherever a task is sent from): the ticks, and beat's sign of life for /ready."""
    BEAT_TICKS.labels(str(sender).rsplit(".", 1)[-1]).inc()
    if _beat_every is not None and _publisher is not None:
        try:
            record_beat_tick(_publisher.store, _beat_every)
        except redis.RedisError:
            pass                                  # /ready says beat is silent; the tick itself goes on
        _publisher.publish_if_due()
