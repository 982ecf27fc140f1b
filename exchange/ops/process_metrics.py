"""Every process's metrics on the web's one `/metrics`.

The processes that serve no HTTP (each matching worker, the Celery worker and beat) keep a prometheus_client
registry of their own and, every METRICS_COLLECTION_INTERVAL, write its text exposition to Redis under
`metrics:process:<name>`, expiring after three intervals (a process that stopped drops out). The web's
`/metrics` serves its own series and every such process's, each sample labelled with the `process` it came from,
so the deployment guide's one scrape target (`curl /metrics | grep trading_`) shows the whole system.

A web process is one of several (Granian's WEB_PROCESSES, and the web's pods): each is named `web:<host>:<pid>`
and hands its own registry over too, after the requests it serves, so whichever one answers a scrape shows every
web process's series under its own name, and a counter never jumps between processes from scrape to scrape.

Why not a port per process: the guide scrapes one target, and a worker pod has no Service to be found by. Why
not prometheus_client's multiprocess mode: it shares files on one host, and the workers run in pods of their own.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time

import redis
from prometheus_client import REGISTRY, CollectorRegistry, Gauge, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

log = logging.getLogger(__name__)
KEY_PREFIX = "metrics:process:"


def web_process_name() -> str:
    """This web process's `process` label (read after the server forked it)."""
    return f"web:{socket.gethostname()}:{os.getpid()}"


def process_key(name: str) -> str:
    return KEY_PREFIX + name


def count_threads(registry: CollectorRegistry) -> None:
    """`python_threads`, read when collected: the System Health dashboard's threads (prometheus_client's process
    collector has none)."""
    Gauge("python_threads", "Threads alive in the process.", registry=registry).set_function(threading.active_count)


class MetricsPublisher:
    """Writes a process's registry to Redis at most every `every` seconds; a failure is logged, never raised (the
    process's work goes on without its metrics)."""

    def __init__(self, name: str, registry: CollectorRegistry, store: redis.Redis, every: float) -> None:
        self.name, self.registry, self.store, self.every = name, registry, store, every
        self._last = 0.0

    def due(self) -> bool:
        return time.monotonic() - self._last >= self.every

    def publish_if_due(self) -> None:
        if self.due():
            self.publish()

    def publish(self) -> None:
        self._last = time.monotonic()
        try:
            self.store.set(process_key(self.name), generate_latest(self.registry), ex=max(1, round(3 * self.every)))
        except redis.RedisError as error:
            log.warning("metrics not published", extra={"event": "metrics_publish_failed", "error": str(error)})


def labelled(families, process: str) -> list[Metric]:
    """The families with every sample labelled with the process it came from."""
    return [_relabel(family, process) for family in families]


def _relabel(family: Metric, process: str) -> Metric:
    copy = Metric(family.name, family.documentation, family.type, family.unit)
    copy.samples = [Sample(s.name, {**s.labels, "process": process}, s.value, s.timestamp, s.exemplar)
                    for s in family.samples]
    return copy


def merged(families) -> list[Metric]:
    """One family per name: the same series from several processes is one family of several label sets."""
    by_name: dict[str, Metric] = {}
    for family in families:
        kept = by_name.get(family.name)
        if kept is None:
            by_name[family.name] = kept = Metric(family.name, family.documentation, family.type, family.unit)
        kept.samples.extend(family.samples)
    return list(by_name.values())


def other_processes(store: redis.Redis, own: str) -> list[Metric]:
    """The families the other processes published and that have not expired (this one's, `own`, left out)."""
    found = (key.decode() if isinstance(key, bytes) else key for key in store.scan_iter(match=KEY_PREFIX + "*",
                                                                                        count=1000))
    keys = sorted(key for key in found if key != process_key(own))
    families = []
    for key, text in zip(keys, store.mget(keys) if keys else [], strict=True):
        if text is not None:
            text = text.decode() if isinstance(text, bytes) else text
            families += labelled(text_string_to_metric_families(text), key.removeprefix(KEY_PREFIX))
    return families


class SystemMetrics:
    """A registry-like view for `generate_latest`: this web process's series and every other process's."""

    def __init__(self, store: redis.Redis) -> None:
        self.store = store

    def collect(self):
        name = web_process_name()
        own = labelled(REGISTRY.collect(), name)
        try:
            others = other_processes(self.store, name)
        except redis.RedisError as error:
            log.warning("other processes' metrics unavailable", extra={"event": "metrics_read_failed",
                                                                      "error": str(error)})
            others = []
        return merged(own + others)


class WebPublisher:
    """This web process's registry handed to Redis at most every METRICS_COLLECTION_INTERVAL, looked at after each
    request it serves (a clock read; the exposition itself is a few milliseconds every interval). One per process:
    made again in a forked child."""

    def __init__(self, store: redis.Redis, every: float) -> None:
        self.store, self.every = store, every
        self._made: tuple[int, MetricsPublisher] | None = None      # (pid, its publisher)

    def after_request(self, **_: object) -> None:
        if self._made is None or self._made[0] != os.getpid():
            self._made = (os.getpid(), MetricsPublisher(web_process_name(), REGISTRY, self.store, self.every))
        self._made[1].publish_if_due()
