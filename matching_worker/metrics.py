"""The matching worker's Prometheus metrics, in a registry of its own that the worker hands to the web's
/metrics through Redis every METRICS_COLLECTION_INTERVAL (`exchange/ops/process_metrics.py`).

Recorded once per committed batch, from what the batch already holds, never per command on the engines' path:
the orders and trades it committed, how long each waited from its commit to the inbox to its batch's commit,
the batch's size and the inbox's lag; and, at each publication of the figures, each pair's breaker and
migration state as its engine holds it. The market data publisher records its own latency and updates.
"""
from __future__ import annotations

import time
from bisect import bisect_right
from collections import Counter, deque
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Gauge, GCCollector, Histogram, PlatformCollector, ProcessCollector
from prometheus_client import Counter as CounterMetric

from exchange.ops.process_metrics import count_threads
from matching.circuit_breaker import OPEN
from matching.migration import ADAPTIVE_ONLY, LEGACY_ONLY, MIGRATING

if TYPE_CHECKING:
    from matching_worker.batch import Batch
    from matching_worker.pairs import PairRuntime

# Seconds: from half a millisecond (a batch committed at once) to 10 s (a stalled disk, a backlog).
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 5, 10, 50, 100, 250, 500, 1000, 2500, 5000)
MODES = (LEGACY_ONLY, MIGRATING, ADAPTIVE_ONLY)
DISAGREEMENTS = ("divergence", "exception")          # `matching.migration.Disagreement.kind`
PAIR_ERRORS = (*DISAGREEMENTS, "quarantined")
WORKER_ERRORS = ("batch_failed", "publish_failed")
P95_WINDOW_SECONDS = 60


def observe_all(histogram, values: list[float]) -> None:
    """`observe` for each of `values`, in one pass over the buckets: a batch of 5,000 orders observed one by one
    cost the engines' thread milliseconds a batch. prometheus_client has no such call; this updates the same
    counters `observe` does (per-bucket counts, the sum), which a test holds equal to observing one by one."""
    if not values:
        return
    ordered = sorted(values)
    counted = 0
    for bucket, bound in zip(histogram._buckets, histogram._upper_bounds, strict=True):
        upto = bisect_right(ordered, bound)
        if upto > counted:
            bucket.inc(upto - counted)
            counted = upto
    histogram._sum.inc(sum(ordered))


def cumulative_counts(histogram) -> list[float]:
    counts, total = [], 0.0
    for bucket in histogram._buckets:
        total += bucket.get()
        counts.append(total)
    return counts


class RecentQuantile:
    """A quantile of a histogram over the last `window` seconds, from snapshots of its bucket counts taken at each
    refresh and interpolated within a bucket as Prometheus's `histogram_quantile` does: the p95 gauge the
    deployment guide's HighLatency alert reads, at no cost per observation."""

    def __init__(self, histogram, window: float) -> None:
        self.histogram = histogram
        self.window = window
        self.snapshots: deque[tuple[float, list[float]]] = deque()

    def value(self, quantile: float, now: float) -> float:
        counts = cumulative_counts(self.histogram)
        if not self.snapshots:                      # the first look counts everything since the start
            self.snapshots.append((now, [0.0] * len(counts)))
        self.snapshots.append((now, counts))
        while len(self.snapshots) > 1 and self.snapshots[1][0] <= now - self.window:
            self.snapshots.popleft()
        recent = [count - old for count, old in zip(counts, self.snapshots[0][1], strict=True)]
        total = recent[-1]
        if not total:
            return 0.0
        rank, lower, below = quantile * total, 0.0, 0.0
        for bound, count in zip(self.histogram._upper_bounds, recent, strict=True):
            if count >= rank:
                if bound == float("inf"):
                    return lower
                return lower + (bound - lower) * (rank - below) / (count - below) if count > below else bound
            lower, below = bound, count
        return lower


class WorkerMetrics:
    """The series of one worker process."""

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        for collector in (ProcessCollector, PlatformCollector, GCCollector):
            collector(registry=registry)
        count_threads(registry)
        self.orders = CounterMetric("trading_orders", "Orders and cancel/reduce requests committed by the worker.",
                                    ["pair", "kind"], registry=registry)
        self.trades = CounterMetric("trading_trades", "Trades committed.", ["pair"], registry=registry)
        self.errors = CounterMetric("trading_errors", "Errors: divergences and exceptions of the adaptive book,"
                                    " quarantined entries, failed batches, failed publications.",
                                    ["pair", "kind"], registry=registry)
        self.divergences = CounterMetric("trading_divergences", "Commands on which the books disagreed.",
                                         ["pair", "kind"], registry=registry)
        self.breaker_trips = CounterMetric("trading_circuit_breaker_trips", "Times a pair's breaker opened.",
                                           ["pair"], registry=registry)
        # One family, the guide's `grep trading_latency` finds it; a stage per label.
        latency = Histogram("trading_latency_seconds", "Latency by stage: order_processing (an order's commit to"
                            " the inbox to its batch's commit), trade_execution (the taker's commit to the inbox to"
                            " its trade's commit), market_data (a batch's commit to its publication).", ["stage"],
                            buckets=LATENCY_BUCKETS, registry=registry)
        self.order_latency = latency.labels("order_processing")
        self.trade_latency = latency.labels("trade_execution")
        self.market_data_latency = latency.labels("market_data")
        self.order_latency_p95 = Gauge("trading_order_processing_latency_p95",
                                       "95th percentile of the order processing latency over the last minute,"
                                       " seconds.", registry=registry)
        self.batch_size = Histogram("trading_batch_size", "Inbox entries and control commands per batch.",
                                    buckets=BATCH_BUCKETS, registry=registry)
        self.inbox_lag = Gauge("trading_inbox_lag_seconds", "Age of the oldest entry of the latest batch when"
                               " it was claimed.", registry=registry)
        self.breaker_open = Gauge("trading_circuit_breaker_open", "1 while the pair's breaker is open.", ["pair"],
                                  registry=registry)
        self.migration_percentage = Gauge("trading_migration_percentage", "Share of the pair's order flow the"
                                          " adaptive book decides, percent.", ["pair"], registry=registry)
        self.migration_mode = Gauge("trading_migration_mode", "1 for the mode the pair's engine runs in.",
                                    ["pair", "mode"], registry=registry)
        self.book_latency_p95 = Gauge("trading_book_latency_p95_seconds", "95th percentile of a book's matching"
                                      " time this minute (what the latency rollback trigger reads).",
                                      ["pair", "book"], registry=registry)
        self.memory = Gauge("trading_worker_memory_bytes", "The worker's resident memory.", registry=registry)
        self.memory_limit = Gauge("trading_worker_memory_limit_bytes", "The memory limit the rollback trigger"
                                  " compares against.", registry=registry)
        self.market_data_updates = CounterMetric("trading_market_data_updates", "Level changes and trades"
                                                 " published.", ["pair"], registry=registry)
        self.recent_order_latency = RecentQuantile(self.order_latency, P95_WINDOW_SECONDS)
        self.pairs_seen: set[str] = set()
        for kind in WORKER_ERRORS:
            self.errors.labels("", kind)

    def _start_at_zero(self, symbol: str) -> None:
        """A pair's counters exist from the start at 0, as Prometheus's rate() and the alerts need them to."""
        for kind in PAIR_ERRORS:
            self.errors.labels(symbol, kind)
        for kind in DISAGREEMENTS:
            self.divergences.labels(symbol, kind)
        for kind in ("place", "cancel", "reduce"):
            self.orders.labels(symbol, kind)
        self.trades.labels(symbol)
        self.breaker_trips.labels(symbol)
        self.market_data_updates.labels(symbol)

    def batch_committed(self, batch: Batch, pairs: dict[int, PairRuntime], committed_at: float) -> None:
        """A committed batch's figures. On the engines' thread, between two batches: a few passes over the batch
        in all (a batch of 5,000 orders observed one by one cost milliseconds)."""
        symbols = {pair_id: runtime.symbol for pair_id, runtime in pairs.items()}
        arrived = batch.arrivals           # (entry id, pair id, kind, committed to the inbox at, epoch seconds)
        for (pair_id, kind), count in Counter((pair_id, kind) for _, pair_id, kind, _ in arrived).items():
            self.orders.labels(symbols.get(pair_id, str(pair_id)), kind).inc(count)
        observe_all(self.order_latency, [committed_at - created for *_, created in arrived])
        if batch.trades:
            created_at = {entry_id: created for entry_id, _, kind, created in arrived if kind == "place"}
            for pair_id, count in Counter(row[0] for row in batch.trades).items():
                self.trades.labels(symbols.get(pair_id, str(pair_id))).inc(count)
            observe_all(self.trade_latency, [committed_at - created_at[row[3]] for row in batch.trades
                                             if row[3] in created_at])
        for pair_id, disagreement in batch.divergences:
            symbol = symbols.get(pair_id, str(pair_id))
            self.divergences.labels(symbol, disagreement.kind).inc()
            self.errors.labels(symbol, disagreement.kind).inc()
        for pair_id, opened in batch.breaker_trips.items():
            self.breaker_trips.labels(symbols.get(pair_id, str(pair_id))).inc(opened)
        self.batch_size.observe(batch.entries)
        if arrived:
            self.inbox_lag.set(max(0.0, batch.claimed_at - min(created for *_, created in arrived)))

    def error(self, kind: str, pair: str = "") -> None:
        self.errors.labels(pair, kind).inc()

    def refresh(self, pairs: dict[int, PairRuntime], memory: int, memory_limit: int) -> None:
        """The figures read from the engines rather than counted: before each publication of the metrics."""
        now = time.time()
        self.order_latency_p95.set(self.recent_order_latency.value(0.95, now))
        for runtime in pairs.values():
            if runtime.symbol not in self.pairs_seen:
                self.pairs_seen.add(runtime.symbol)
                self._start_at_zero(runtime.symbol)
            engine = runtime.engine
            self.breaker_open.labels(runtime.symbol).set(1 if engine.breaker.state == OPEN else 0)
            self.migration_percentage.labels(runtime.symbol).set(engine.percentage)
            for mode in MODES:
                self.migration_mode.labels(runtime.symbol, mode).set(1 if engine.mode == mode else 0)
            for book, health in engine.health.items():
                p95_us = health.percentile_us(0.95)
                if p95_us is not None:
                    self.book_latency_p95.labels(runtime.symbol, book).set(p95_us / 1e6)
        self.memory.set(memory)
        self.memory_limit.set(memory_limit)
